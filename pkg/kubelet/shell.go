package kubelet

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// program plays container c's command in the simulated shell, with the
// files, environment and hostname the kubelet gives the container: what
// it prints (the container's log), how long it sleeps and how it exits.
// ok is false when the shell does not know all of it (another program, a
// construct or a file it does not simulate): what the container would do
// is not known then.
func (k *Kubelet) program(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (p program, ok bool) {
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) == 0 {
		return program{}, false // the image's own command
	}
	out := &lineWriter{at: func() time.Duration { return p.runs }}
	sh := k.newShell(pod, *c)
	sh.in, sh.out, sh.err, sh.program, sh.scratch = strings.NewReader(""), out, out, true, nil
	sh.sleep = func(_ context.Context, d time.Duration) bool {
		if d >= 1<<62 { // sleep infinity
			p.forever = true
			return false
		}
		p.runs += d
		return true
	}
	p.exitCode = sh.run(ctx, argv)
	if sh.unknown {
		return program{}, false
	}
	p.output = out.close()
	return p, true
}

// lineWriter splits what a program prints into lines, each at the time
// its newline was printed (the last, unterminated one at the end).
type lineWriter struct {
	at      func() time.Duration
	lines   []printed
	partial []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.partial = append(w.partial, b...)
			return n, nil
		}
		w.lines = append(w.lines, printed{w.at(), string(append(w.partial, b[:i]...))})
		w.partial, b = nil, b[i+1:]
	}
}

func (w *lineWriter) close() []printed {
	if len(w.partial) > 0 {
		w.lines = append(w.lines, printed{w.at(), string(w.partial)})
		w.partial = nil
	}
	return w.lines
}

// readsCommands: the container's command is a shell with no script (sh,
// bash -i) or there is none (the images people attach to default to one).
func readsCommands(c corev1.Container) bool {
	argv := append(append([]string(nil), c.Command...), c.Args...)
	if len(argv) == 0 {
		return true
	}
	if !shells[path.Base(argv[0])] {
		return false
	}
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "-") || strings.Contains(a[1:], "c") && !strings.HasPrefix(a, "--") {
			return false
		}
	}
	return true
}

// shell plays the commands a test runs in a container (exec, or a shell
// it attached to), and a container's own command when parseCommand does
// not know it all (program): the simple commands of parseCommand (echo,
// true, false, :, exit, sleep), plus cat, ls and tar cf (of the files the
// kubelet gives the container), hostname, pwd, env and printenv, the
// filters grep, head, tail, wc, sort and uniq (filters.go), and writes
// (writes.go: redirections, tar x, touch, mkdir, test) into its emptyDir
// volumes and its own files, in scripts joined by ;, &&, || and pipes (sh
// -c, or sh FILE of a mounted script).
// Any other command is not found, as in a container without that program:
// exit status 127.
type shell struct {
	pod       *corev1.Pod
	container corev1.Container
	in        io.Reader
	out, err  io.Writer
	tty       bool
	// sleep waits d (under the time scale) or until ctx ends.
	sleep func(ctx context.Context, d time.Duration) bool
	// environ is the container's environment; files, what it can read;
	// scratch, where it writes (nil while playing a container's command:
	// that is run again at every step, so it writes nothing).
	environ func(ctx context.Context) [][2]string
	files   func(ctx context.Context) map[string]file
	scratch *scratch
	// program: the shell plays a container's command, whose output is the
	// container's log; unknown is set once it met what it cannot answer
	// (unsupported), and it stops there.
	program, unknown bool
}

// newShell is the simulated shell of container c of pod, with the
// environment and files the kubelet gives it, writing to the kubelet's
// scratch; its streams are the caller's to set.
func (k *Kubelet) newShell(pod *corev1.Pod, c corev1.Container) *shell {
	return &shell{pod: pod, container: c, sleep: k.sleep, scratch: k.scratch,
		environ: func(ctx context.Context) [][2]string { return k.environment(ctx, pod, &c) },
		files:   func(ctx context.Context) map[string]file { return k.files(ctx, pod, &c) }}
}

// mounted: p is, or is inside, a volume mount of the container's whose
// files the simulation knows all of: a ConfigMap, Secret, downward API or
// projected volume, or an emptyDir (empty: nothing writes to it). A
// hostPath, a claim's or another volume holds files that are not
// simulated; a subPath mount is a file.
func (s *shell) mounted(p string) bool {
	_, ok := s.mountAt(p)
	return ok
}

// mountAt is the mount point of such a volume that p is or is inside.
func (s *shell) mountAt(p string) (string, bool) {
	for _, m := range s.container.VolumeMounts {
		mount := path.Clean(m.MountPath)
		if m.SubPath != "" || p != mount && !strings.HasPrefix(p, mount+"/") {
			continue
		}
		for _, v := range s.pod.Spec.Volumes {
			if v.Name == m.Name && (v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil || v.EmptyDir != nil) {
				return mount, true
			}
		}
	}
	return "", false
}

// missing is why path p is not among the files: not there, inside a
// volume mount, which the simulation knows all of; otherwise the image's
// files, which it does not simulate (saying it is not there could be
// wrong), so that a container's command played by the shell is unknown.
func (s *shell) missing(p string) string {
	if s.mounted(p) {
		return "No such file or directory"
	}
	s.unknown = s.unknown || s.program
	return notSimulated
}

// unsupported says what the simulation cannot answer (a program it does
// not know is one: not found). Playing a container's command, the shell
// then gives up (unknown): what the container would print is not known.
func (s *shell) unsupported(format string, args ...any) {
	fmt.Fprintf(s.err, format, args...)
	if s.program {
		s.unknown = true
	}
}

// notSimulated says which files of a container are simulated.
const (
	simulatedVolumes = "mockernetes simulates only the files of ConfigMap, Secret, downward API, projected and emptyDir volumes"
	notSimulated     = simulatedVolumes + " and /etc/hostname, /etc/hosts, /etc/resolv.conf"
)

// absolute is a path of the shell's, whose working directory is /.
func absolute(p string) string { return path.Join("/", p) }

// isMount: dir is the mount point of a volume whose files are known (an
// empty one is a directory too).
func (s *shell) isMount(dir string) bool {
	mount, ok := s.mountAt(dir)
	return ok && mount == dir
}

// isDir: some file lies under dir.
func isDir(files map[string]file, dir string) bool {
	return len(entries(files, dir)) > 0
}

// entries are the names in dir, sorted: its files and directories.
func entries(files map[string]file, dir string) []string {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	seen := map[string]bool{}
	for p := range files {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			name, _, _ := strings.Cut(rest, "/")
			seen[name] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// run runs argv as the container's runtime would: a shell with -c runs
// its script, a shell without reads commands from stdin, anything else is
// one command. It returns the exit status.
func (s *shell) run(ctx context.Context, argv []string) int32 {
	if len(argv) == 0 {
		return 0
	}
	if shells[path.Base(argv[0])] {
		if script, ok := shellScript(argv[1:]); ok {
			code, _ := s.script(ctx, script)
			return code
		}
		for _, a := range argv[1:] {
			if !strings.HasPrefix(a, "-") {
				// A script file: the shell runs what it holds.
				f, ok := s.files(ctx)[absolute(a)]
				if !ok {
					fmt.Fprintf(s.err, "%s: can't open '%s': %s\n", path.Base(argv[0]), a, s.missing(absolute(a)))
					return 2
				}
				content, err := f()
				if err != nil {
					fmt.Fprintf(s.err, "%s: can't open '%s': %v\n", path.Base(argv[0]), a, err)
					return 2
				}
				code, _ := s.script(ctx, string(content))
				return code
			}
		}
		code, _ := s.interactive(ctx, s.tty, true)
		return code
	}
	code, _ := s.command(ctx, argv)
	return code
}

// script runs a script; exited is true when it ran exit.
func (s *shell) script(ctx context.Context, script string) (code int32, exited bool) {
	statements, err := split(script)
	if err != nil {
		s.unsupported("sh: mockernetes does not simulate this script (redirections, variables, subshells): %s\n", strings.TrimSpace(script))
		return 127, false
	}
	for i := 0; i < len(statements); {
		// A pipeline: the statement and those piped from it (| binds
		// tighter than && and ||).
		end := i + 1
		for end < len(statements) && statements[end].join == "|" {
			end++
		}
		join, commands := statements[i].join, statements[i:end]
		i = end
		if (join == "&&" && code != 0) || (join == "||" && code == 0) {
			continue
		}
		if len(commands) > 1 {
			if code = s.pipeline(ctx, commands); s.unknown {
				return code, true
			}
			continue
		}
		if code, exited = s.redirected(ctx, commands[0]); exited || s.unknown {
			return code, true
		}
	}
	return code, false
}

// command runs one simple command.
func (s *shell) command(ctx context.Context, words []string) (int32, bool) {
	name, args := path.Base(words[0]), words[1:]
	switch name {
	case "true", ":":
		return 0, false
	case "false":
		return 1, false
	case "echo":
		newline := "\n"
		if len(args) > 0 && args[0] == "-n" {
			args, newline = args[1:], ""
		}
		fmt.Fprint(s.out, strings.Join(args, " ")+newline)
		return 0, false
	case "exit":
		code := int32(0)
		if len(args) > 0 {
			var n int
			if _, err := fmt.Sscan(args[0], &n); err != nil {
				fmt.Fprintf(s.err, "sh: exit: Illegal number: %s\n", args[0])
				return 2, true
			}
			code = int32(n & 0xff)
		}
		return code, true
	case "sleep":
		var total time.Duration
		for _, a := range args {
			d, ok := sleepDuration(a)
			if a == "infinity" || a == "inf" {
				d, ok = 1<<62, true
			}
			if !ok {
				fmt.Fprintf(s.err, "sleep: invalid number '%s'\n", a)
				return 1, false
			}
			total += d
		}
		if len(args) == 0 {
			fmt.Fprintln(s.err, "sleep: missing operand")
			return 1, false
		}
		if !s.sleep(ctx, total) {
			return 130, true
		}
		return 0, false
	case "cat":
		if len(args) == 0 || slices.Equal(args, []string{"-"}) {
			_, _ = io.Copy(s.out, s.in)
			return 0, false
		}
		files, code := s.files(ctx), int32(0)
		for _, a := range args {
			f, ok := files[absolute(a)]
			switch {
			case ok:
				content, err := f()
				if err != nil {
					fmt.Fprintf(s.err, "cat: read error: %v\n", err)
					code = 1
					continue
				}
				_, _ = s.out.Write(content)
			case isDir(files, absolute(a)) || s.isMount(absolute(a)):
				fmt.Fprintf(s.err, "cat: read error: Is a directory\n")
				code = 1
			default:
				fmt.Fprintf(s.err, "cat: can't open '%s': %s\n", a, s.missing(absolute(a)))
				code = 1
			}
		}
		return code, false
	case "ls":
		files, code := s.files(ctx), int32(0)
		if len(args) == 0 {
			args = []string{"."}
		}
		for _, a := range args {
			if strings.HasPrefix(a, "-") {
				s.unsupported("sh: mockernetes does not simulate ls with options\n")
				return 127, false
			}
			dir := absolute(a)
			switch {
			case files[dir] != nil:
				fmt.Fprintln(s.out, a)
			case !s.mounted(dir):
				// The image's directories are not simulated: their
				// listing would be wrong.
				s.unsupported("ls: can't list '%s': %s\n", a, simulatedVolumes)
				code = 1
			case isDir(files, dir) || s.isMount(dir):
				for _, name := range entries(files, dir) {
					fmt.Fprintln(s.out, name)
				}
			default:
				fmt.Fprintf(s.err, "ls: %s: No such file or directory\n", a)
				code = 1
			}
		}
		return code, false
	case "tar":
		if len(args) > 0 && strings.Contains(args[0], "x") {
			return s.untar(ctx, args), false
		}
		return s.tar(ctx, args), false
	case "test":
		return s.test(ctx, args), false
	case "touch":
		return s.touch(args), false
	case "mkdir":
		return s.mkdir(args), false
	case "grep":
		return s.grep(ctx, args), false
	case "head", "tail":
		return s.headTail(ctx, name, args), false
	case "wc":
		return s.wc(ctx, args), false
	case "sort":
		return s.sort(ctx, args), false
	case "uniq":
		return s.uniq(ctx, args), false
	case "hostname":
		fmt.Fprintln(s.out, hostname(s.pod))
		return 0, false
	case "pwd":
		fmt.Fprintln(s.out, "/")
		return 0, false
	case "env", "printenv":
		env := s.environ(ctx)
		if len(args) == 0 {
			for _, kv := range env {
				fmt.Fprintln(s.out, kv[0]+"="+kv[1])
			}
			return 0, false
		}
		if name == "env" {
			s.unsupported("sh: mockernetes does not simulate env with arguments\n")
			return 127, false
		}
		code := int32(0)
		for _, a := range args {
			i := slices.IndexFunc(env, func(kv [2]string) bool { return kv[0] == a })
			if i < 0 {
				code = 1
				continue
			}
			fmt.Fprintln(s.out, env[i][1])
		}
		return code, false
	}
	s.unsupported("sh: %s: not found\n", words[0])
	return 127, false
}

// interactive reads commands from stdin, line by line, until exit or the
// end of stdin. With a terminal it prompts and echoes what is typed, as
// the terminal's line discipline does, ending lines with \r\n. It returns
// the last status and whether the shell exited: on exit, ^D, or the end of
// stdin if eofEnds (a once-only stdin; otherwise the client detached).
func (s *shell) interactive(ctx context.Context, tty, eofEnds bool) (int32, bool) {
	out := s.out
	if tty {
		out = crlf{s.out}
		s.out, s.err = out, out
	}
	prompt := func() {
		if tty {
			fmt.Fprint(out, "/ # ")
		}
	}
	prompt()
	var code int32
	r := bufio.NewReader(s.in)
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			if len(line) > 0 {
				var exited bool
				if code, exited = s.script(ctx, string(line)); exited {
					return code, true
				}
			}
			return code, eofEnds
		}
		switch {
		case tty && b == 4 && len(line) == 0: // ^D
			fmt.Fprint(out, "\n")
			return code, true
		case tty && b == 3: // ^C
			fmt.Fprint(out, "^C\n")
			line = line[:0]
			prompt()
		case tty && (b == 127 || b == 8):
			if len(line) > 0 {
				line = line[:len(line)-1]
				fmt.Fprint(s.out, "\b \b")
			}
		case b == '\r' || b == '\n':
			if tty {
				fmt.Fprint(out, "\n")
			}
			var exited bool
			code, exited = s.script(ctx, string(line))
			if exited {
				return code, true
			}
			line = line[:0]
			prompt()
		default:
			line = append(line, b)
			if tty {
				_, _ = out.Write([]byte{b})
			}
		}
	}
}

// crlf writes \n as \r\n, as a terminal does.
type crlf struct{ w io.Writer }

func (c crlf) Write(p []byte) (int, error) {
	if _, err := c.w.Write([]byte(strings.ReplaceAll(string(p), "\n", "\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// matchCommand matches a command's words against an exec rule's command:
// exactly, or as a glob in which * matches any text and ? one character.
func matchCommand(pattern string, argv []string) bool {
	cmd := strings.Join(argv, " ")
	if pattern == cmd {
		return true
	}
	if !strings.ContainsAny(pattern, "*?") {
		return false
	}
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString("(?s:.*)")
		case '?':
			re.WriteString("(?s:.)")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	ok, _ := regexp.MatchString(re.String(), cmd)
	return ok
}

// tar writes an archive of files to stdout (`tar cf - PATH...`, what
// kubectl cp from a pod runs), as busybox's tar: members named without the
// leading slash, a directory with everything under it. Other uses (kubectl
// cp to a pod extracts) answer as a read-only file system.
func (s *shell) tar(ctx context.Context, args []string) int32 {
	if len(args) < 2 || args[0] != "cf" && args[0] != "-cf" || args[1] != "-" {
		s.unsupported("tar: mockernetes simulates only tar cf - of the container's files (%s): Read-only file system\n", strings.Join(args, " "))
		return 1
	}
	files, code := s.files(ctx), int32(0)
	w := tar.NewWriter(s.out)
	now := time.Now()
	stripped := false
	for _, a := range args[2:] {
		p := absolute(a)
		if strings.HasPrefix(a, "/") && !stripped {
			fmt.Fprintln(s.err, "tar: removing leading '/' from member names")
			stripped = true
		}
		var members []string
		switch {
		case files[p] != nil:
			members = []string{p}
		case isDir(files, p) || s.isMount(p):
			prefix := strings.TrimSuffix(p, "/") + "/"
			for f := range files {
				if strings.HasPrefix(f, prefix) {
					members = append(members, f)
				}
			}
			slices.Sort(members)
			if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: 0o755, ModTime: now}); err != nil {
				return 1
			}
		default:
			fmt.Fprintf(s.err, "tar: %s: %s\n", a, s.missing(p))
			code = 1
			continue
		}
		dirs := map[string]bool{}
		for _, m := range members {
			content, err := files[m]()
			if err != nil {
				fmt.Fprintf(s.err, "tar: %s: %v\n", m, err)
				code = 1
				continue
			}
			// The directories between it and the one archived, outer first.
			var between []string
			for d := path.Dir(m); len(d) > len(p) && !dirs[d]; d = path.Dir(d) {
				dirs[d] = true
				between = append(between, d)
			}
			for _, d := range slices.Backward(between) {
				if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: now}); err != nil {
					return 1
				}
			}
			if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(m, "/"), Mode: 0o644, Size: int64(len(content)), ModTime: now}); err != nil {
				return 1
			}
			if _, err := w.Write(content); err != nil {
				return 1
			}
		}
	}
	if err := w.Close(); err != nil {
		return 1
	}
	return code
}
