-- cork.nvim: :Cork drives cork through one `cork serve --stdio` per Neovim.
-- See :help cork. Needs Neovim 0.7 or later.
if vim.g.loaded_cork_nvim then return end
vim.g.loaded_cork_nvim = true

if vim.fn.has("nvim-0.7") ~= 1 then
  vim.api.nvim_echo({ { "cork: the plugin needs Neovim 0.7 or later", "ErrorMsg" } }, true, {})
  return
end

vim.api.nvim_create_user_command("Cork", function(o) require("cork_nvim").command(o) end, {
  nargs = "*",
  bang = true,
  complete = function(lead, line, pos) return require("cork_nvim").complete(lead, line, pos) end,
  desc = "cork: recipes, plan, run, cancel, ls, down, supervise",
})

local group = vim.api.nvim_create_augroup("cork_nvim", { clear = true })
vim.api.nvim_create_autocmd("VimLeavePre", {
  group = group,
  callback = function()
    -- only when it was ever loaded: quitting never starts a server
    if package.loaded["cork_nvim"] then require("cork_nvim").leave() end
  end,
})
vim.api.nvim_create_autocmd("ColorScheme", {
  group = group,
  callback = function() require("cork_nvim.buf").highlights() end,
})
require("cork_nvim.buf").highlights()
