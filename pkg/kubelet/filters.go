package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The filters of the simulated shell, for pipes (env | grep X, cat f |
// head -n 1): grep, head, tail, wc, sort and uniq, with the options tests
// use, as busybox has them. An option they do not know is unsupported.

// pipeline runs commands joined by pipes, each reading what the one before
// printed (the first reads the shell's input, the last prints to its
// output). exit in a pipeline ends only its own part. The status is the
// last command's.
func (s *shell) pipeline(ctx context.Context, commands []statement) int32 {
	in, out := s.in, s.out
	defer func() { s.in, s.out = in, out }()
	var code int32
	for i, st := range commands {
		var printed bytes.Buffer
		s.out = &printed
		if i == len(commands)-1 {
			s.out = out
		}
		if code, _ = s.redirected(ctx, st); s.unknown {
			return code
		}
		s.in = &printed
	}
	return code
}

// input is what a filter reads: the files named (each as read, in order),
// or its standard input when none is (or "-"). A file it cannot read is
// reported as open says, and makes the status 1 (2 for grep).
func (s *shell) input(ctx context.Context, tool string, names []string) (contents [][]byte, code int32) {
	if len(names) == 0 {
		names = []string{"-"}
	}
	failed := int32(1)
	if tool == "grep" {
		failed = 2
	}
	var files map[string]file
	for _, name := range names {
		if name == "-" {
			data, _ := io.ReadAll(s.in)
			contents = append(contents, data)
			continue
		}
		if files == nil {
			files = s.files(ctx)
		}
		p := absolute(name)
		f, ok := files[p]
		var data []byte
		var err error
		switch {
		case ok:
			if data, err = f(); err == nil {
				contents = append(contents, data)
				continue
			}
		case isDir(files, p) || s.isMount(p):
			err = fmt.Errorf("Is a directory")
		default:
			err = fmt.Errorf("%s", s.missing(p))
		}
		if tool == "grep" {
			fmt.Fprintf(s.err, "grep: %s: %v\n", name, err)
		} else {
			fmt.Fprintf(s.err, "%s: can't open '%s': %v\n", tool, name, err)
		}
		code = failed
	}
	return contents, code
}

// options splits a filter's arguments into its single-letter options
// (grouped or not; -n 5 and -n5 give n its value when valued says n takes
// one, and -5 is -n 5 for head and tail) and its operands. ok is false
// for an option it does not know.
func options(args []string, known, valued string, numeric bool) (set map[byte]string, operands []string, ok bool) {
	set = map[byte]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return set, append(operands, args[i+1:]...), true
		}
		if len(a) < 2 || a[0] != '-' {
			operands = append(operands, a)
			continue
		}
		if numeric && a[1] >= '0' && a[1] <= '9' {
			set['n'] = a[1:]
			continue
		}
		for j := 1; j < len(a); j++ {
			o := a[j]
			switch {
			case strings.IndexByte(valued, o) >= 0:
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return nil, nil, false
					}
					i++
					v = args[i]
				}
				set[o] = v
				j = len(a)
			case strings.IndexByte(known, o) >= 0:
				set[o] = ""
			default:
				return nil, nil, false
			}
		}
	}
	return set, operands, true
}

// lines splits text into its lines, without their newlines.
func lines(text []byte) []string {
	if len(text) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
}

func (s *shell) printLines(ls []string) {
	for _, l := range ls {
		fmt.Fprintln(s.out, l)
	}
}

// grep [-vicqnxFE] [-e] PATTERN [FILE...]
func (s *shell) grep(ctx context.Context, args []string) int32 {
	set, operands, ok := options(args, "vicqnxFEsw", "e", false)
	if !ok {
		s.unsupported("sh: mockernetes does not simulate grep with these options: %s\n", strings.Join(args, " "))
		return 2
	}
	pattern, hasPattern := set['e']
	if !hasPattern {
		if len(operands) == 0 {
			fmt.Fprintln(s.err, "Usage: grep [-vicqnxFE] PATTERN [FILE]...")
			return 2
		}
		pattern, operands = operands[0], operands[1:]
	}
	_, fixed := set['F']
	if fixed {
		pattern = regexp.QuoteMeta(pattern)
	} else if _, extended := set['E']; !extended {
		pattern = basicRegexp(pattern)
	}
	if _, whole := set['w']; whole {
		pattern = `\b(?:` + pattern + `)\b`
	}
	if _, line := set['x']; line {
		pattern = `^(?:` + pattern + `)$`
	}
	if _, fold := set['i']; fold {
		pattern = `(?i)` + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		fmt.Fprintf(s.err, "grep: bad regex '%s'\n", pattern)
		return 2
	}
	contents, code := s.input(ctx, "grep", operands)
	_, invert := set['v']
	_, count := set['c']
	_, quiet := set['q']
	_, number := set['n']
	named := len(operands) > 1
	matched := 0
	for i, data := range contents {
		n := 0
		for j, l := range lines(data) {
			if re.MatchString(l) == invert {
				continue
			}
			n++
			if quiet || count {
				continue
			}
			prefix := ""
			if named {
				prefix = operands[i] + ":"
			}
			if number {
				prefix += strconv.Itoa(j+1) + ":"
			}
			fmt.Fprintln(s.out, prefix+l)
		}
		if count && !quiet {
			if named {
				fmt.Fprintf(s.out, "%s:%d\n", operands[i], n)
			} else {
				fmt.Fprintln(s.out, n)
			}
		}
		matched += n
	}
	switch {
	case matched > 0 && (quiet || code == 0):
		return 0
	case code != 0:
		return code
	}
	return 1
}

// basicRegexp turns a basic regular expression (grep's default) into Go's
// syntax: in a BRE, + ? | ( ) { } are literal and \+ \? \| \( \) \{ \}
// are the operators.
func basicRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p) && strings.IndexByte("+?|(){}", p[i+1]) >= 0:
			b.WriteByte(p[i+1])
			i++
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
		case strings.IndexByte("+?|(){}", c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// head and tail [-n N | -N] [FILE...]: the first or last N lines (10).
func (s *shell) headTail(ctx context.Context, tool string, args []string) int32 {
	set, operands, ok := options(args, "", "n", true)
	n := 10
	if v, given := set['n']; ok && given {
		var err error
		if n, err = strconv.Atoi(strings.TrimPrefix(v, "+")); err != nil || n < 0 || strings.HasPrefix(v, "+") {
			ok = false
		}
	}
	if !ok {
		s.unsupported("sh: mockernetes does not simulate %s with these options: %s\n", tool, strings.Join(args, " "))
		return 1
	}
	contents, code := s.input(ctx, tool, operands)
	for i, data := range contents {
		if len(contents) > 1 {
			if i > 0 {
				fmt.Fprintln(s.out)
			}
			fmt.Fprintf(s.out, "==> %s <==\n", operands[i])
		}
		ls := lines(data)
		if tool == "head" {
			s.printLines(ls[:min(n, len(ls))])
		} else {
			s.printLines(ls[max(0, len(ls)-n):])
		}
	}
	return code
}

// wc -l, -w or -c [FILE...]: one count, followed by the file's name when
// one is named.
func (s *shell) wc(ctx context.Context, args []string) int32 {
	set, operands, ok := options(args, "lwc", "", false)
	if !ok || len(set) != 1 {
		s.unsupported("sh: mockernetes simulates wc with one of -l, -w and -c only\n")
		return 1
	}
	contents, code := s.input(ctx, "wc", operands)
	total := 0
	for i, data := range contents {
		n := len(data)
		switch {
		case hasKey(set, 'l'):
			n = bytes.Count(data, []byte{'\n'})
		case hasKey(set, 'w'):
			n = len(strings.Fields(string(data)))
		}
		total += n
		if len(operands) > 0 {
			fmt.Fprintf(s.out, "%d %s\n", n, operands[i])
		} else {
			fmt.Fprintln(s.out, n)
		}
	}
	if len(operands) > 1 {
		fmt.Fprintf(s.out, "%d total\n", total)
	}
	return code
}

func hasKey(set map[byte]string, o byte) bool {
	_, ok := set[o]
	return ok
}

// sort [-rnu] [FILE...]: the lines of all, sorted (by their leading number
// with -n), reversed, each once.
func (s *shell) sort(ctx context.Context, args []string) int32 {
	set, operands, ok := options(args, "rnu", "", false)
	if !ok {
		s.unsupported("sh: mockernetes does not simulate sort with these options: %s\n", strings.Join(args, " "))
		return 1
	}
	contents, code := s.input(ctx, "sort", operands)
	var all []string
	for _, data := range contents {
		all = append(all, lines(data)...)
	}
	cmp := strings.Compare
	if hasKey(set, 'n') {
		cmp = func(a, b string) int {
			if c := leadingNumber(a) - leadingNumber(b); c != 0 {
				if c < 0 {
					return -1
				}
				return 1
			}
			return strings.Compare(a, b)
		}
	}
	slices.SortStableFunc(all, cmp)
	if hasKey(set, 'r') {
		slices.Reverse(all)
	}
	if hasKey(set, 'u') {
		all = slices.Compact(all)
	}
	s.printLines(all)
	return code
}

// leadingNumber is the number a line starts with (after blanks), 0 if none.
func leadingNumber(l string) float64 {
	l = strings.TrimLeft(l, " \t")
	end := 0
	for end < len(l) && (l[end] >= '0' && l[end] <= '9' || l[end] == '.' || end == 0 && l[end] == '-') {
		end++
	}
	n, _ := strconv.ParseFloat(l[:end], 64)
	return n
}

// uniq [-c] [FILE]: adjacent equal lines once, counted with -c.
func (s *shell) uniq(ctx context.Context, args []string) int32 {
	set, operands, ok := options(args, "c", "", false)
	if !ok || len(operands) > 1 {
		s.unsupported("sh: mockernetes does not simulate uniq with these arguments: %s\n", strings.Join(args, " "))
		return 1
	}
	contents, code := s.input(ctx, "uniq", operands)
	for _, data := range contents {
		ls := lines(data)
		for i := 0; i < len(ls); {
			j := i + 1
			for j < len(ls) && ls[j] == ls[i] {
				j++
			}
			if hasKey(set, 'c') {
				fmt.Fprintf(s.out, "%7d %s\n", j-i, ls[i])
			} else {
				fmt.Fprintln(s.out, ls[i])
			}
			i = j
		}
	}
	return code
}
