package main

import (
	"fmt"
)

// completionCmd is `hbmesh completion SHELL`. Each script hands completion
// back to hbmesh: the shell runs `hbmesh` with the command line in
// $COMP_LINE (bash's `complete -C` protocol, which the zsh and fish
// functions below imitate), and run answers
// with kongplete, from the same kong model that parses the command line.
// kongplete's own installer writes such lines for the login shell only,
// with this binary's absolute path; these name `hbmesh` on $PATH, so that
// a package can ship them.
type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish"`
}

func (c *completionCmd) Help() string {
	return `Print a script that makes the shell complete hbmesh's subcommands and flags. It calls the hbmesh found on $PATH.`
}

func (c *completionCmd) examples() []string {
	return []string{
		"source <(hbmesh completion bash)            # in ~/.bashrc",
		"source <(hbmesh completion zsh)             # in ~/.zshrc",
		"hbmesh completion fish | source             # in ~/.config/fish/config.fish",
		"hbmesh completion bash > /usr/share/bash-completion/completions/hbmesh",
	}
}

// completionScript returns the script for shell.
func completionScript(shell string) string {
	switch shell {
	case "bash":
		return `# hbmesh completion for bash: source it, or install it as
# /usr/share/bash-completion/completions/hbmesh.
complete -C hbmesh hbmesh
`
	case "zsh":
		// #compdef makes compinit load the file by itself from $fpath
		// (where the packages install it, as _hbmesh); sourced, it
		// registers the same function with compdef.
		return `#compdef hbmesh
# hbmesh completion for zsh: install it as _hbmesh in a directory of
# $fpath (/usr/share/zsh/vendor-completions on Debian), or source it from
# ~/.zshrc after compinit.
_hbmesh() {
	local -a candidates
	candidates=("${(@f)$(COMP_LINE=${BUFFER[1,CURSOR]} hbmesh 2>/dev/null)}")
	compadd -- "${candidates[@]}"
}
if [[ ${funcstack[1]} == _hbmesh ]]; then
	_hbmesh "$@"
else
	compdef _hbmesh hbmesh
fi
`
	case "fish":
		return `# hbmesh completion for fish: source it, or install it as
# /usr/share/fish/vendor_completions.d/hbmesh.fish.
function __hbmesh_complete
    set -l line (commandline -cp)
    # A new word starts after a space, which fish leaves out.
    if test -z (commandline -ct)
        set line "$line "
    end
    COMP_LINE=$line hbmesh
end
complete -c hbmesh -f -a '(__hbmesh_complete)'
`
	}
	return ""
}

func (c *completionCmd) Run(e *env) error {
	_, err := fmt.Fprint(e.stdout, completionScript(c.Shell))
	return err
}
