-- GET /e with a realistic pixel query of 10 parameters.
wrk.method = "GET"
wrk.path = "/e?event=pageview&page=%2Fproducts%2F42%3Fcolor%3Dblue&ref=https%3A%2F%2Fwww.example.com%2Fsearch%3Fq%3Dshoes"
  .. "&uid=u-8f14e45fceea167a5a36&sid=s-3c59dc048e88&w=1920&h=1080&lang=en-US&tz=Europe%2FBerlin&ts=1764124014084"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
dofile("bench/wrk/report.lua")
