-- PATCH /api/v1/users/{random}/segments/ with one add and one remove among BENCH_PATCH_SEGMENTS slugs
-- (seg_1..seg_N); counts the real changes the responses report, for the history check.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local pool = tonumber(os.getenv("BENCH_PATCH_SEGMENTS") or "10")

function request()
  local a = math.random(1, pool)
  local r = math.random(1, pool - 1)
  if r >= a then r = r + 1 end
  local body = '{"add": ["seg_' .. a .. '"], "remove": ["seg_' .. r .. '"]}'
  return wrk.format("PATCH", "/api/v1/users/" .. bench_user() .. "/segments/",
    bench_headers({ ["Content-Type"] = "application/json" }), body)
end

function response(status, headers, body)
  if status == 200 then
    if not string.find(body, '"added":[]', 1, true) then added = added + 1 end
    if not string.find(body, '"removed":[]', 1, true) then removed = removed + 1 end
  end
end
