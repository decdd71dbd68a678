-- One distinct, valid application per request (emails and TINs must not repeat).
local n = 0
local run = os.getenv("BENCH_RUN") or "0"
local template = [[{"business":{"name":"Bench Farms %d Ltd","business_type":"limited_company","registration_number":"CS%06d","tin":"P%s%09d","address":"12 Liberation Road","city":"Accra","region":"AA","postal_code":"GA-123","country":"GH"},"contact":{"telephone":"024 123 4567","email":"bench%d.%s@example.com"},"commodities":["maize","soybean"],"warehouse_location":"Plot 4, Tema","team_members":[{"full_name":"Ama Mensah","role":"Director","telephone":"+233 20 123 4567"}],"next_of_kin":{"full_name":"Kofi Mensah","relationship":"Brother","telephone":"0551234567"},"bank_accounts":{"primary":{"bank_name":"GCB Bank","account_name":"BENCH FARMS %d LTD","account_number":"10%010d"}},"declaration":{"agreed":true,"data_consent":true,"signer_name":"Ama Mensah","signer_designation":"Director"}}]]
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  n = n + 1
  local body = string.format(template, n, n % 1000000, run, n, n, run, n, n)
  return wrk.format(nil, "/api/v1/applications", nil, body)
end
