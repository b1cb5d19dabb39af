-- Pipelining: each connection writes DEPTH requests for the URL's path at
-- once, then waits for all DEPTH responses before writing the next batch
-- (benches/compare: pipeline-16). wrk counts every response as a request;
-- its latency figures are per batch (first request written to last
-- response read).
--   wrk -t2 -c50 -d5s --latency -s benches/wrk/pipeline.lua http://127.0.0.1:8080/ -- 16
local batch

init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, wrk.path)
   end
   batch = table.concat(r)
end

request = function()
   return batch
end
