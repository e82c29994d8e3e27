-- cork.cli: the subcommands of the `cork` executable. main.c has already
-- taken the global flags (--json, -v, -q, --no-color, --lua-path).
-- Subcommands not defined here are looked up as modules `cork.cmd.NAME`
-- (a module returning function(args) -> exit code), so later layers and
-- operators add commands without touching C.
local core = require "cork.core"

local M = {}

local USAGE = [[
usage: cork [global flags] COMMAND [args]

commands:
  run RECIPE [options]   run a recipe by name or path (see `cork recipes`)
  recipes                list the recipes cork can find
  script FILE [ARGS]     run a Lua file with the bindings loaded (also: cork FILE.lua)
  repl                   interactive Lua prompt with the bindings loaded
  version                versions of cork and its libraries (also: --version)
  help [COMMAND|RECIPE]  this text, or one command's or recipe's
  complete WHAT          names for shell completion, one a line

bottles:
  bottles                the bottles and agents cork can find, and where
  plan --bottle NAME     validate a bottle and print what a launch would do
  import-bottle FILE     print a bot-bottle file in cork's native form
  ls                     running bottles: slug, backend, alias, ports, age, status
  attach SLUG            run a detached bottle's agent in this terminal
  down SLUG... | --all   end everything a bottle owns
  gc [--yes]             clean up after cork processes that died
  supervise [SLUG]       what agents asked for; supervise approve|deny ID
  serve --stdio          JSON-lines control channel for editors

  (`cork run docker|smolmachines --bottle NAME` launches one: `cork help docker`;
   from nothing to a running bottle: docs/getting-started.md)

global flags (before or after the command):
  --json          events as NDJSON on stdout; human output off
  -v, --verbose   debug events and tracebacks
  -q, --quiet     only warnings and errors
  --no-color      no ANSI colours (NO_COLOR is honoured too)
  --lua-path DIRS ';'-separated dirs searched before the embedded Lua files
                  (also CORK_PATH)

exit codes: 0 ok, 1 failed, 2 usage or invalid input, 130 interrupted
]]

local HELP = {
  help = [[
usage: cork help [COMMAND | RECIPE]

Without an argument, the list of commands, global flags and exit codes.
With a command's name, that command's help (the same as `cork COMMAND
--help`); with a recipe's name, the recipe's own help (the same as
`cork run RECIPE --help`). `man cork` holds all of it (make install).]],
  run = [[
usage: cork run RECIPE [recipe options]

Runs a recipe: a name found in CORK_PATH (DIR/recipes/NAME.lua, DIR/NAME.lua)
or among the embedded recipes, or a path to a .lua file. The options after
RECIPE are the recipe's own; `cork run RECIPE --help` (or `cork help RECIPE`)
shows the recipe's help: the comment block at the top of its file, read and
never run. A misspelled recipe name is a usage error (exit 2) with a
suggestion. The recipe comes first; when options come first
(`cork run --bottle dev docker`), the one word that names a recipe is used.]],
  recipes = [[
usage: cork recipes

Lists the recipes cork can find (CORK_PATH first, then the embedded ones)
with their one-line descriptions. With --json, one event per recipe.]],
  script = [[
usage: cork script FILE.lua [ARGS...]    (or: cork FILE.lua [ARGS...])

Runs a Lua file with every binding loaded: the global `cork` holds them all
(cork.scope, cork.proc, cork.fs, cork.docker, ...); `arg` and `...` hold ARGS.
Returning an integer sets the exit code.]],
  repl = [[
usage: cork repl

An interactive Lua prompt with `cork` bound. Expressions print their values;
Ctrl-C abandons the current line; Ctrl-D quits.]],
  version = [[
usage: cork version

Prints the versions of cork, Lua, libcurl, libyaml and OpenSSL.]],
}

local function out(s) io.stdout:write(s, "\n") end

local function usage(msg)
  core.error("usage", msg .. "\n(see `cork help`)")
end

local function want_help(args)
  for _, a in ipairs(args) do
    if a == "--help" or a == "-h" then return true end
    if a == "--" then return false end
  end
  return false
end

local commands = {}

-- Every command: name -> its help text (the man page is made from these).
function M.command_names()
  local names, seen = {}, {}
  for _, n in ipairs({ "run", "recipes", "script", "repl", "version", "help" }) do
    names[#names + 1] = n; seen[n] = true
  end
  for _, p in ipairs(core.embedded_list("lua/cork/cmd/")) do
    local n = p:match("^lua/cork/cmd/([%w_-]+)%.lua$")
    if n and not seen[n] then names[#names + 1] = n; seen[n] = true end
  end
  return names
end

function M.help_text(name)
  if name == nil then return USAGE end
  if HELP[name] then return HELP[name] end
  local ok, mod = pcall(require, "cork.cmd." .. name)
  if ok and type(mod) == "table" and mod.help then return mod.help end
  return nil
end

function commands.help(args)
  local name = args[1]
  if #args > 1 then usage("help takes one command or recipe name") end
  if not name then io.stdout:write(USAGE); return 0 end
  local text = M.help_text(name)
  if text then out(text); return 0 end
  local recipes = require "cork.recipes"
  if pcall(recipes.find, name) then out(recipes.help(name)); return 0 end
  local hint = require("cork.args").suggest(name, M.command_names())
  if not hint then
    local names = {}
    for _, r in ipairs(recipes.list()) do names[#names + 1] = r.name end
    hint = require("cork.args").suggest(name, names)
  end
  usage(("no command or recipe '%s'%s"):format(name, hint and ("; did you mean '%s'?"):format(hint) or ""))
end

function commands.version(args)
  local v = core.versions()
  if core.settings().json then
    require("cork.log").event("version", v)
  else
    out(("cork %s\n%s\nlibcurl %s\nlibyaml %s\n%s"):format(v.cork, v.lua, v.libcurl, v.libyaml, v.openssl))
  end
  return 0
end

function commands.recipes(args)
  if #args > 0 then usage("recipes takes no arguments") end
  local list = require("cork.recipes").list()
  if core.settings().json then
    local log = require "cork.log"
    for _, r in ipairs(list) do log.event("recipe", r) end
  else
    local w = 0
    for _, r in ipairs(list) do w = math.max(w, #r.name) end
    for _, r in ipairs(list) do
      out(("%-" .. w .. "s  %s%s"):format(r.name, r.description,
        r.origin == "path" and ("  [" .. r.path .. "]") or ""))
    end
  end
  return 0
end

-- The recipe comes first (`cork run RECIPE [options]`). When options come
-- first (`cork run --bottle dev docker`), the one word among the rest that
-- names a recipe is taken as the recipe; anything else is a usage error.
local function recipe_first(args)
  local recipes = require "cork.recipes"
  if args[1] == nil or args[1]:sub(1, 1) ~= "-" then return table.remove(args, 1) end
  local found = {}
  for i, a in ipairs(args) do
    if a == "--" then break end
    if a:sub(1, 1) ~= "-" and pcall(recipes.find, a) then found[#found + 1] = i end
  end
  if #found ~= 1 then
    usage(("run takes the recipe first: cork run RECIPE [options] (got option %s first)"):format(args[1]))
  end
  return table.remove(args, found[1])
end

function commands.run(args)
  local name = recipe_first(args)
  if not name then usage("run needs a recipe name or path") end
  local recipes = require "cork.recipes"
  local ok, err = pcall(recipes.find, name)
  if not ok then
    -- a misspelled name on the command line is a usage error (exit 2)
    if core.is_error(err, "not_found") then err.exit_code = 2 end
    error(err, 0)
  end
  -- the recipe's help is its header comment: shown, never run
  if want_help(args) then out(recipes.help(name)); return 0 end
  return recipes.run(name, args)
end

function M.run_file(path, args)
  local st = require("cork.fs").stat(path)
  if not st then core.error("not_found", ("no such file: %s"):format(path), { path = path }) end
  local fn, err = loadfile(path, "t")
  if not fn then core.error("invalid", err) end
  args[0] = path
  _G.arg = args
  _G.cork = _G.cork or require "cork"
  local rc = fn(table.unpack(args, 1, #args))
  if math.type(rc) == "integer" then return rc end
  return 0
end

function commands.script(args)
  local path = table.remove(args, 1)
  if not path then usage("script needs a Lua file") end
  return M.run_file(path, args)
end

function commands.repl(args)
  _G.cork = _G.cork or require "cork"
  local tty = core.isatty(0)
  if tty then out(("cork %s (%s) -- `cork` holds the bindings; Ctrl-D quits"):format(core.versions().cork, _VERSION)) end
  local buffer = nil
  while true do
    if tty then io.stdout:write(buffer and ">> " or "cork> "); io.stdout:flush() end
    local line = io.read("l")
    if core.interrupted() then
      core.clear_interrupt()
      buffer = nil
      if tty then io.stdout:write("^C\n") end
      line = line or ""
    elseif line == nil then
      if tty then io.stdout:write("\n") end
      return 0
    end
    local src = buffer and (buffer .. "\n" .. line) or line
    local fn, err = load("return " .. src, "=repl", "t")
    if not fn then fn, err = load(src, "=repl", "t") end
    if not fn then
      if err:find("<eof>$") then buffer = src
      else buffer = nil; io.stderr:write(err, "\n") end
    else
      buffer = nil
      local res = table.pack(xpcall(fn, function(e)
        if core.is_error(e) then return e end
        return debug.traceback(tostring(e), 2)
      end))
      if core.interrupted() then core.clear_interrupt() end
      if not res[1] then
        local e = res[2]
        if core.is_error(e) then io.stderr:write(("error (%s): %s\n"):format(e.kind, e.message))
        else io.stderr:write(tostring(e), "\n") end
      elseif res.n > 1 then
        local parts = {}
        for i = 2, res.n do
          local v = res[i]
          if type(v) == "table" and not getmetatable(v) then
            local ok, s = pcall(require("cork.json").encode, v)
            parts[#parts + 1] = ok and s or tostring(v)
          else
            parts[#parts + 1] = tostring(v)
          end
        end
        out(table.concat(parts, "\t"))
      end
    end
  end
end

-- main(args) -> exit code
function M.main(args)
  local cmd = args[1]
  if cmd == nil then io.stderr:write(USAGE); return 2 end
  if cmd == "--help" or cmd == "-h" then io.stdout:write(USAGE); return 0 end
  if cmd == "--version" or cmd == "-V" then return commands.version({}) end
  if cmd:match("%.lua$") and cmd ~= "script" then
    return M.run_file(cmd, { table.unpack(args, 2) })
  end
  local rest = { table.unpack(args, 2) }
  if cmd ~= "run" and cmd ~= "script" and want_help(rest) then
    return commands.help({ cmd })
  end
  if (cmd == "run" or cmd == "script") and (rest[1] == "--help" or rest[1] == "-h") then
    return commands.help({ cmd })
  end
  local fn = commands[cmd]
  if not fn then
    local ok, mod = pcall(require, "cork.cmd." .. cmd)
    if not ok then
      if tostring(mod):find("module 'cork.cmd." .. cmd .. "' not found", 1, true) then
        local hint = require("cork.args").suggest(cmd, M.command_names())
        usage(("unknown command '%s'%s"):format(cmd, hint and ("; did you mean '%s'?"):format(hint) or ""))
      end
      error(mod, 0)
    end
    fn = type(mod) == "table" and mod.main or mod
  end
  return fn(rest)
end

function M.run_recipe(name, args)
  return require("cork.recipes").run(name, args)
end

return M
