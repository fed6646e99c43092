-- wrk script for bench/ceiling.py --wrk: replays requests signed in advance, in order, cycling.
-- The file given after `--` holds records "<decimal length>\n<raw HTTP request bytes>".
local reqs = {}
local i = 0
function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a"); f:close()
  local pos = 1
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    local n = tonumber(data:sub(pos, nl - 1))
    reqs[#reqs + 1] = data:sub(nl + 1, nl + n)
    pos = nl + 1 + n
  end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
