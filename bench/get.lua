-- GET /api/v1/users/{random}/segments/
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function request()
  return wrk.format("GET", "/api/v1/users/" .. bench_user() .. "/segments/", bench_headers())
end
