package kubelet

import (
	"errors"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// program is what a container's command does when it is a sequence of
// simple commands the simulation recognises: how long it runs, what it
// prints, and how it exits. Nothing is executed.
type program struct {
	runs     time.Duration
	forever  bool // sleep infinity
	output   []printed
	exitCode int32
}

// printed is a line a container prints, this long after it started (what
// it slept before printing it).
type printed struct {
	after time.Duration
	text  string
}

// printedAtStart are lines printed as a container starts.
func printedAtStart(lines []string) []printed {
	if lines == nil {
		return nil
	}
	out := make([]printed, len(lines))
	for i, l := range lines {
		out[i] = printed{text: l}
	}
	return out
}

// shells are the interpreters whose -c script is read.
var shells = map[string]bool{"sh": true, "bash": true, "ash": true, "dash": true, "zsh": true, "ksh": true}

// parseCommand reads a container's command and args: `sleep N` (several
// durations add up, with s, m, h or d; `infinity`), `exit N`, `true`,
// `false`, `:` and `echo ...`, directly or in a shell's -c script joined by
// `;`, `&&`, `||` or newlines. Anything else (pipes, redirections,
// variables, other programs) is not recognised: ok is false and the
// container behaves as one whose command is unknown.
func parseCommand(c corev1.Container) (program, bool) {
	argv := append(append([]string(nil), c.Command...), c.Args...)
	if len(argv) == 0 {
		return program{}, false
	}
	if shells[path.Base(argv[0])] {
		script, ok := shellScript(argv[1:])
		if !ok {
			return program{}, false
		}
		return parseScript(script)
	}
	switch path.Base(argv[0]) {
	case "sleep", "true", "false", "echo":
		argv[0] = path.Base(argv[0])
		return run([]statement{{words: argv}})
	}
	return program{}, false
}

// shellScript is the script of `sh -c SCRIPT [NAME ARGS...]` (flags may be
// grouped: -ec, -xc).
func shellScript(args []string) (string, bool) {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") || a == "-" {
			return "", false
		}
		if strings.Contains(a[1:], "c") && !strings.HasPrefix(a, "--") {
			if i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		}
	}
	return "", false
}

// statement is one simple command and how it is joined to the one before:
// "" (always), "&&", "||", or "|" (a pipe: it reads what that one prints);
// with where its output goes.
type statement struct {
	join      string
	words     []string
	redirects []redirect
}

// redirect sends a command's output (fd 1) or errors (fd 2) to a file,
// appending with >>, or to the other one (2>&1, >&2: to is 1 or 2).
type redirect struct {
	fd        int
	appending bool
	to        int
	file      string
}

var errUnrecognised = errors.New("not a simple script")

func parseScript(script string) (program, bool) {
	statements, err := split(script)
	if err != nil || len(statements) == 0 {
		return program{}, false
	}
	return run(statements)
}

// split tokenizes a script into statements: words with quotes removed,
// separated by ;, newlines, &&, || and |, with their redirections (> FILE,
// >> FILE, 2> FILE, 2>&1, >&2). Anything a simple script would not have is
// refused.
func split(script string) ([]statement, error) {
	var out []statement
	cur := statement{}
	var word strings.Builder
	inWord := false
	var pending *redirect // its file is the next word
	endWord := func() {
		if inWord {
			if pending != nil {
				pending.file = word.String()
				cur.redirects = append(cur.redirects, *pending)
				pending = nil
			} else {
				cur.words = append(cur.words, word.String())
			}
			word.Reset()
			inWord = false
		}
	}
	endStatement := func(join string) error {
		endWord()
		if pending != nil {
			return errUnrecognised // `echo >`: a redirection without its file
		}
		if len(cur.words) == 0 {
			if join != "" || cur.join != "" || len(cur.redirects) > 0 {
				return errUnrecognised // `&& x`, `x && ;`: an operator with nothing on a side
			}
			return nil
		}
		if strings.Contains(cur.words[0], "=") {
			return errUnrecognised // NAME=value: a variable
		}
		out = append(out, cur)
		cur = statement{join: join}
		return nil
	}
	for i := 0; i < len(script); i++ {
		ch := script[i]
		switch {
		case ch == '>':
			r := redirect{fd: 1}
			if inWord && (word.String() == "1" || word.String() == "2") { // 2>: the errors
				r.fd = int(word.String()[0] - '0')
				word.Reset()
				inWord = false
			}
			endWord()
			if pending != nil {
				return nil, errUnrecognised
			}
			if strings.HasPrefix(script[i+1:], ">") {
				r.appending = true
				i++
			}
			if rest := script[i+1:]; strings.HasPrefix(rest, "&1") || strings.HasPrefix(rest, "&2") {
				r.to = int(rest[1] - '0')
				cur.redirects = append(cur.redirects, r)
				i += 2
				continue
			}
			pending = &r
		case ch == '\'':
			end := strings.IndexByte(script[i+1:], '\'')
			if end < 0 {
				return nil, errUnrecognised
			}
			word.WriteString(script[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case ch == '"':
			end := strings.IndexByte(script[i+1:], '"')
			if end < 0 || strings.ContainsAny(script[i+1:i+1+end], "$`\\") {
				return nil, errUnrecognised
			}
			word.WriteString(script[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case ch == ' ' || ch == '\t':
			endWord()
		case ch == '#' && !inWord:
			// A comment, to the end of the line (a script's #! line too).
			if end := strings.IndexByte(script[i:], '\n'); end >= 0 {
				i += end - 1
			} else {
				i = len(script)
			}
		case ch == ';' || ch == '\n':
			if err := endStatement(""); err != nil {
				return nil, err
			}
		case strings.HasPrefix(script[i:], "&&"), strings.HasPrefix(script[i:], "||"):
			if err := endStatement(script[i : i+2]); err != nil {
				return nil, err
			}
			i++
		case ch == '|':
			if err := endStatement("|"); err != nil {
				return nil, err
			}
		case strings.IndexByte("|&<()`${}*?[]\\~", ch) >= 0:
			return nil, errUnrecognised
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	if err := endStatement(""); err != nil {
		return nil, err
	}
	return out, nil
}

// run plays the statements as sh would: && runs the next one only after
// success, || only after failure; exit stops; the exit code is exit's or
// the last status.
func run(statements []statement) (program, bool) {
	var p program
	status := int32(0)
	for _, st := range statements {
		if st.join == "|" || len(st.redirects) > 0 {
			return program{}, false // the simulated shell plays pipes and redirections
		}
		if (st.join == "&&" && status != 0) || (st.join == "||" && status == 0) {
			continue
		}
		name, args := st.words[0], st.words[1:]
		switch name {
		case "true", ":":
			status = 0
		case "false":
			status = 1
		case "echo":
			if len(args) > 0 && args[0] == "-n" {
				args = args[1:]
			}
			p.output = append(p.output, printed{p.runs, strings.Join(args, " ")})
			status = 0
		case "sleep":
			if len(args) == 0 {
				return program{}, false
			}
			for _, a := range args {
				if a == "infinity" || a == "inf" {
					p.forever = true
					return p, true
				}
				d, ok := sleepDuration(a)
				if !ok {
					return program{}, false
				}
				p.runs += d
			}
			status = 0
		case "exit":
			switch len(args) {
			case 0:
			case 1:
				n, err := strconv.Atoi(args[0])
				if err != nil {
					return program{}, false
				}
				status = int32(n & 0xff)
			default:
				return program{}, false
			}
			p.exitCode = status
			return p, true
		default:
			return program{}, false
		}
	}
	p.exitCode = status
	return p, true
}

// sleepDuration reads one of GNU sleep's operands: a number of seconds,
// minutes, hours or days.
func sleepDuration(s string) (time.Duration, bool) {
	unit := time.Second
	switch {
	case strings.HasSuffix(s, "s"):
		s = s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		s, unit = s[:len(s)-1], time.Minute
	case strings.HasSuffix(s, "h"):
		s, unit = s[:len(s)-1], time.Hour
	case strings.HasSuffix(s, "d"):
		s, unit = s[:len(s)-1], 24*time.Hour
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(unit) > float64(math.MaxInt64/2) {
		return 0, false
	}
	return time.Duration(f * float64(unit)), true
}
