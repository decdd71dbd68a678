"""applicant"""
