-- docker_save: an image archive (`docker save`, GET /images/{id}/get) taken
-- two ways through cork.docker, side by side: the answer whole in memory
-- (request without `output`, then written out, as prepare did before) and
-- streamed to the file (request{output}, what prepare does). Each run is its
-- own `cork script` process so its peak RSS (VmHWM) is its own. Interleaved;
-- medians; ratios are streamed / in memory.
--   cork script bench/docker_save.lua [MiB=128] [N=3]
local MIB = tonumber(arg and arg[1]) or 128
local N = tonumber(arg and arg[2]) or 3
local fs, proc = cork.fs, cork.proc
local ok_d, d = pcall(function() return cork.docker.connect() end)
if not ok_d then print("SKIP: no Docker engine: " .. tostring(d)); return 0 end
local bin = os.getenv("CORK_BIN") or arg[-1] or "cork"

local dir = fs.tempdir("cork-bench-save")
local s <close> = cork.scope("bench docker_save")
s:defer(fs.remove, dir, { recursive = true })
local IMG = "cork-bench-save:" .. cork.core.pid()
-- an image of MIB MiB of incompressible bytes, made locally (no registry)
fs.mkdir(dir .. "/root")
local r = proc.run({ "sh", "-c", 'head -c "$1" /dev/urandom > "$2/root/blob" && tar -C "$2/root" -cf "$2/r.tar" .',
  "sh", tostring(MIB * 1048576), dir })
assert(r.status == 0, r.stderr)
d:image_import(dir .. "/r.tar", { repo = IMG:match("^[^:]+"), tag = IMG:match(":(.*)$"), timeout = 600 })
s:defer(function() pcall(d.image_remove, d, IMG, { force = true }) end)
fs.remove(dir .. "/r.tar")
fs.remove(dir .. "/root", { recursive = true })

fs.write(dir .. "/one.lua", [[
local d = require("cork.docker").connect()
local mode, img, out = arg[1], arg[2], arg[3]
local t0 = cork.time()
local n
if mode == "file" then
  n = d:request("GET", "/images/" .. img .. "/get", { timeout = 600, output = out }).bytes
else
  local body = d:request("GET", "/images/" .. img .. "/get", { timeout = 600 }).body
  cork.fs.write(out, body, { mode = 384 })
  n = #body
end
local dt = cork.time() - t0
local hwm = cork.fs.read("/proc/self/status"):match("VmHWM:%s*(%d+)")
print(("%d %.3f %s"):format(n, dt, hwm))
]])

local res = { mem = { t = {}, rss = {} }, file = { t = {}, rss = {} } }
local bytes
for _ = 1, N do
  for _, mode in ipairs({ "mem", "file" }) do
    local p = proc.run({ bin, "script", dir .. "/one.lua", mode, IMG, dir .. "/out.tar" })
    assert(p.status == 0, p.stderr)
    local n, dt, hwm = p.stdout:match("(%d+) ([%d.]+) (%d+)")
    bytes = tonumber(n)
    table.insert(res[mode].t, tonumber(dt))
    table.insert(res[mode].rss, tonumber(hwm) / 1024)
    fs.remove(dir .. "/out.tar")
  end
end
local function median(t) table.sort(t); return t[(#t + 1) // 2] end
local mt, ft = median(res.mem.t), median(res.file.t)
local mr, fr = median(res.mem.rss), median(res.file.rss)
print(("archive %.1f MiB, %d runs each, interleaved"):format(bytes / 1048576, N))
print(("  in memory: %7.2f s  peak RSS %7.1f MiB"):format(mt, mr))
print(("  streamed : %7.2f s  peak RSS %7.1f MiB"):format(ft, fr))
print(("ratio streamed/in-memory: time %.2f, peak RSS %.3f"):format(ft / mt, fr / mr))
