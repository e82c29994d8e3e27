-- cork_nvim.buf: scratch buffers with highlighted lines (Neovim 0.7 APIs).
local M = {}

M.ns = vim.api.nvim_create_namespace("cork")

local GROUPS = {
  CorkStep = "Title",
  CorkError = "ErrorMsg",
  CorkWarn = "WarningMsg",
  CorkOk = "DiffAdd",
  CorkEvent = "Comment",
  CorkHeader = "Statement",
  CorkTime = "LineNr",
  CorkHint = "Comment",
}

function M.highlights()
  for g, link in pairs(GROUPS) do vim.cmd(("highlight default link %s %s"):format(g, link)) end
end

-- The buffer named `name`, made if needed: not a file, not swapped.
function M.scratch(name, filetype)
  local nr = vim.fn.bufnr("^" .. vim.fn.escape(name, "\\/.*$^~[]") .. "$")
  local b
  if nr > 0 and vim.api.nvim_buf_is_valid(nr) then
    b = nr
  else
    b = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(b, name)
  end
  vim.bo[b].buftype = "nofile"
  vim.bo[b].bufhidden = "hide"
  vim.bo[b].swapfile = false
  vim.bo[b].filetype = filetype or "cork"
  return b
end

-- Show b in a window: its own when it has one, else a new split.
function M.show(b)
  local win = vim.fn.bufwinid(b)
  if win ~= -1 then
    vim.api.nvim_set_current_win(win)
    return win
  end
  vim.cmd("botright split")
  vim.api.nvim_win_set_buf(0, b)
  return vim.api.nvim_get_current_win()
end

-- Replace the whole text: lines = { {text, group|nil}, ... }.
function M.set(b, lines)
  if not vim.api.nvim_buf_is_valid(b) then return end
  local text = {}
  for i, l in ipairs(lines) do text[i] = l[1] end
  vim.bo[b].modifiable = true
  vim.api.nvim_buf_set_lines(b, 0, -1, false, text)
  vim.api.nvim_buf_clear_namespace(b, M.ns, 0, -1)
  for i, l in ipairs(lines) do
    if l[2] then vim.api.nvim_buf_add_highlight(b, M.ns, l[2], i - 1, l[3] or 0, l[4] or -1) end
  end
  vim.bo[b].modifiable = false
end

-- Append lines; windows showing the end follow it.
function M.append(b, lines)
  if not vim.api.nvim_buf_is_valid(b) then return end
  local n = vim.api.nvim_buf_line_count(b)
  local first = vim.api.nvim_buf_get_lines(b, 0, 1, false)[1]
  local empty = n == 1 and first == ""
  local text = {}
  for i, l in ipairs(lines) do text[i] = l[1] end
  vim.bo[b].modifiable = true
  if empty then vim.api.nvim_buf_set_lines(b, 0, -1, false, text); n = 0
  else vim.api.nvim_buf_set_lines(b, n, n, false, text) end
  vim.bo[b].modifiable = false
  for i, l in ipairs(lines) do
    if l[2] then vim.api.nvim_buf_add_highlight(b, M.ns, l[2], n + i - 1, l[3] or 0, l[4] or -1) end
    if l[5] then vim.api.nvim_buf_add_highlight(b, M.ns, l[5], n + i - 1, 0, l[6] or 0) end
  end
  for _, win in ipairs(vim.fn.win_findbuf(b)) do
    local cur = vim.api.nvim_win_get_cursor(win)[1]
    if cur >= n then vim.api.nvim_win_set_cursor(win, { n + #lines, 0 }) end
  end
end

-- A normal-mode key of buffer b: a Lua function, or a string of keys.
function M.map(b, lhs, rhs, desc)
  if type(rhs) == "string" then
    vim.api.nvim_buf_set_keymap(b, "n", lhs, rhs, { noremap = true, silent = true, desc = desc })
  else
    vim.api.nvim_buf_set_keymap(b, "n", lhs, "", { noremap = true, silent = true, callback = rhs, desc = desc })
  end
end

-- ---- a readable JSON (the plan): sorted keys, two-space indent ----------------

-- vim.json.encode, without the escaped slashes of lua-cjson ("\/")
function M.encode(v)
  return (vim.json.encode(v):gsub("\\/", "/"))
end

local function is_list(t)
  if getmetatable(t) ~= nil then return false end   -- vim.empty_dict()
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function pretty(v, indent, out)
  if v == vim.NIL or v == nil then out[#out + 1] = "null"; return end
  if type(v) ~= "table" then out[#out + 1] = M.encode(v); return end
  local pad = string.rep("  ", indent + 1)
  if is_list(v) then
    if #v == 0 then out[#out + 1] = "[]"; return end
    out[#out + 1] = "[\n"
    for i, x in ipairs(v) do
      out[#out + 1] = pad
      pretty(x, indent + 1, out)
      out[#out + 1] = i < #v and ",\n" or "\n"
    end
    out[#out + 1] = string.rep("  ", indent) .. "]"
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  if #keys == 0 then out[#out + 1] = "{}"; return end
  table.sort(keys)
  out[#out + 1] = "{\n"
  for i, k in ipairs(keys) do
    out[#out + 1] = pad .. M.encode(k) .. ": "
    pretty(v[k], indent + 1, out)
    out[#out + 1] = i < #keys and ",\n" or "\n"
  end
  out[#out + 1] = string.rep("  ", indent) .. "}"
end

function M.pretty_json(v)
  local out = {}
  pretty(v, 0, out)
  return vim.split(table.concat(out), "\n", { plain = true })
end

return M
