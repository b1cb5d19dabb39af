-- Appended by benches/compare to every wrk run (alone for plain GETs, after
-- the scenario's script otherwise): prints the run's figures as one JSON
-- line, so the script reads exact counts and percentiles in microseconds
-- instead of wrk's rounded text. Alone it also works by hand:
--   wrk -t2 -c50 -d5s --latency -s benches/wrk/report.lua http://127.0.0.1:8080/
done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,"
         .. "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f,"
         .. "\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout))
end
