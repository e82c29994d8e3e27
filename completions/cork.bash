# bash completion for cork: commands, recipe names, recipe and command
# options, bottle and agent names (--bottle, --agent), slugs (attach, down).
# Installed by `make install` as $(PREFIX)/share/bash-completion/completions/cork;
# or: source completions/cork.bash
# The names come from the cork being completed: `cork complete WHAT`.
_cork() {
    local cur prev cork_bin cmd= recipe= i w
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cork_bin=${COMP_WORDS[0]}
    _cork_names() { "$cork_bin" complete "$@" 2>/dev/null; }
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
            --lua-path) ((i++)) ;;
            -*) ;;
            *)
                if [[ -z $cmd ]]; then cmd=$w
                elif [[ $cmd == run && -z $recipe ]]; then recipe=$w
                fi ;;
        esac
    done
    case $prev in
        --bottle) COMPREPLY=($(compgen -W "$(_cork_names bottles)" -- "$cur")); return ;;
        --agent) COMPREPLY=($(compgen -W "$(_cork_names agents)" -- "$cur")); return ;;
        --lua-path|--from|--marker) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$(_cork_names commands) --json --verbose --quiet --no-color --lua-path --help --version" -- "$cur"))
        return
    fi
    case $cmd in
        run)
            if [[ -z $recipe ]]; then
                COMPREPLY=($(compgen -W "$(_cork_names recipes)" -- "$cur") $(compgen -f -X '!*.lua' -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(_cork_names options "$recipe")" -- "$cur"))
            fi ;;
        help) COMPREPLY=($(compgen -W "$(_cork_names commands) $(_cork_names recipes)" -- "$cur")) ;;
        attach|down) COMPREPLY=($(compgen -W "$(_cork_names slugs) $(_cork_names options "$cmd")" -- "$cur")) ;;
        script) COMPREPLY=($(compgen -f -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W "$(_cork_names options "$cmd")" -- "$cur")) ;;
    esac
}
complete -F _cork cork
