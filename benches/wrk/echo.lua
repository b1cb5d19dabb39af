-- POST a 1 KiB body to the URL (benches/compare: echo-1k, against /echo).
--   wrk -t2 -c50 -d5s --latency -s benches/wrk/echo.lua http://127.0.0.1:8080/echo
wrk.method = "POST"
wrk.body = string.rep("a", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
