-- The seed API as the older service's clients call it: GET /api/get_user_segments with {"user_id": N} in a JSON body
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function request()
  local body = '{"user_id": ' .. bench_user() .. '}'
  return wrk.format("GET", "/api/get_user_segments", bench_headers({ ["Content-Type"] = "application/json" }), body)
end
