-- Random known tracking codes, read from the file named by BENCH_CODES (one per line).
local codes = {}
for line in io.lines(os.getenv("BENCH_CODES")) do codes[#codes + 1] = line end
math.randomseed(42)

request = function()
  return wrk.format("GET", "/api/v1/applications/" .. codes[math.random(#codes)])
end
