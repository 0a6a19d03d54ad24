-- The seed API: GET /api/get_user_segments?user_id={random}
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function request()
  return wrk.format("GET", "/api/get_user_segments?user_id=" .. bench_user(), bench_headers())
end
