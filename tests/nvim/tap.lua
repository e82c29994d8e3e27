-- tests/nvim/tap.lua: TAP from inside a headless Neovim (`nvim --headless`),
-- for the cork plugin's tests. Lines go to stdout without numbers and
-- without a plan: the runner (tests/cli/nvim.sh, or an integration test)
-- adds its own checks and the plan.
--   local T = dofile(vim.env.CORK_ROOT .. "/tests/nvim/tap.lua")
--   T.ok(cond, name); T.is(got, want, name); T.wait(fn, ms); T.notes; T.quit()
local T = { notes = {}, failed = 0 }

local function out(s) io.stdout:write(s, "\n"); io.stdout:flush() end

function T.diag(s)
  for line in (tostring(s) .. "\n"):gmatch("(.-)\n") do out("# " .. line) end
end

function T.ok(cond, name, diag)
  if cond then out("ok - " .. name) else
    T.failed = T.failed + 1
    out("not ok - " .. name)
    local info = debug.getinfo(2, "Sl")
    if info and info.short_src:find("tap.lua", 1, true) then info = debug.getinfo(3, "Sl") end
    if info then T.diag(("  at %s:%d"):format(info.short_src, info.currentline)) end
    if diag then T.diag(diag) end
  end
  return cond
end

function T.is(got, want, name)
  return T.ok(got == want, name, ("  got:  %s\n  want: %s"):format(vim.inspect(got), vim.inspect(want)))
end

function T.like(got, pat, name)
  return T.ok(type(got) == "string" and got:find(pat) ~= nil, name,
    ("  got:  %s\n  want: /%s/"):format(vim.inspect(got), pat))
end

-- Wait (processing events) until fn() is true; its value, or nil at timeout.
function T.wait(fn, ms)
  local v
  vim.wait(ms or 20000, function() v = fn(); return v end, 20)
  return v
end

-- Every vim.notify is recorded (and shown on stderr for the log).
vim.notify = function(msg, level)
  T.notes[#T.notes + 1] = { msg = tostring(msg), level = level }
  io.stderr:write(("notify[%s] %s\n"):format(tostring(level), tostring(msg)))
end

-- The notes since index `from` matching pat (and level, if given).
function T.notes_like(pat, level, from)
  local out_ = {}
  for i = from or 1, #T.notes do
    local n = T.notes[i]
    if n.msg:find(pat) and (level == nil or n.level == level) then out_[#out_ + 1] = n end
  end
  return out_
end

function T.lines(b) return vim.api.nvim_buf_get_lines(b or 0, 0, -1, false) end
function T.text(b) return table.concat(T.lines(b), "\n") end

-- The buffer whose name matches pat.
function T.buf(pat)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b):find(pat) then return b end
  end
end

-- The highlight groups on line i (1-based) of buffer b.
function T.groups(b, i)
  local ns = vim.api.nvim_create_namespace("cork")
  local marks = vim.api.nvim_buf_get_extmarks(b, ns, { i - 1, 0 }, { i - 1, -1 }, { details = true })
  local g = {}
  for _, m in ipairs(marks) do if m[4] and m[4].hl_group then g[#g + 1] = m[4].hl_group end end
  return table.concat(g, ",")
end

-- Load the plugin the way a user does: the folder on 'runtimepath'.
function T.load_plugin()
  vim.opt.runtimepath:prepend(vim.env.CORK_ROOT .. "/editors/nvim")
  vim.cmd("runtime! plugin/cork.lua")
  return require("cork_nvim")
end

-- Leave: errors from the script itself are a failure too.
function T.quit()
  io.stdout:flush()
  vim.cmd("qall!")   -- (not :cquit: VimLeavePre must run, as for a user)
end

-- Run the test body; a Lua error is a failed test, not a hang.
function T.run(fn)
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then T.ok(false, "the test script ran to its end", err) end
  T.quit()
end

return T
