-- POST /e with one JSON event of about 300 bytes.
wrk.method = "POST"
wrk.path = "/e"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"event":"add_to_cart","user_id":"u-8f14e45fceea167a5a36","session_id":"s-3c59dc048e88",'
  .. '"product":{"id":"sku-42-blue","name":"Trail Running Shoe","price":129.95,"currency":"EUR","quantity":1},'
  .. '"page":"/products/42?color=blue","referrer":"https://www.example.com/search?q=shoes",'
  .. '"screen":{"w":1920,"h":1080},"ts":1764124014084}'
dofile("bench/wrk/report.lua")
