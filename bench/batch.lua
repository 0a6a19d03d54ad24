-- POST /api/v1/users/segments/ with BENCH_BATCH distinct random user ids (the batch lookup)
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local size = tonumber(os.getenv("BENCH_BATCH") or "1000")

function request()
  local seen, ids = {}, {}
  while #ids < size do
    local id = bench_user()
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
  local body = '{"user_ids": [' .. table.concat(ids, ",") .. ']}'
  return wrk.format("POST", "/api/v1/users/segments/", bench_headers({ ["Content-Type"] = "application/json" }), body)
end
