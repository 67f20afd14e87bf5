package kubelet

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// What the simulated shell writes: into a pod's emptyDir volumes and a
// container's own files (the kubelet's scratch); ConfigMap, Secret,
// downward API and projected volumes are read-only, as the kubelet mounts
// them.

// writeFile writes (or appends to) p, or says why it cannot.
func (s *shell) writeFile(p string, data []byte, appending bool) error {
	if s.scratch == nil {
		s.unknown = s.unknown || s.program
		return errNotSimulated
	}
	return s.scratch.writeFile(s.pod, &s.container, p, data, appending)
}

// redirected runs st's command with its output and errors where its
// redirections send them: a file is created (or emptied) before the
// command runs, as the shell opens it, and gets what it printed after.
func (s *shell) redirected(ctx context.Context, st statement) (int32, bool) {
	if len(st.redirects) == 0 {
		return s.command(ctx, st.words)
	}
	out, errOut := s.out, s.err
	defer func() { s.out, s.err = out, errOut }()
	type opened struct {
		file    string
		printed *bytes.Buffer
	}
	var files []opened
	for _, r := range st.redirects {
		var w io.Writer
		switch {
		case r.to == 1:
			w = s.out
		case r.to == 2:
			w = s.err
		case r.file == "/dev/null":
			w = io.Discard
		default:
			if err := s.writeFile(r.file, nil, r.appending); err != nil {
				fmt.Fprintf(errOut, "sh: can't create %s: %v\n", r.file, err)
				return 1, false
			}
			files = append(files, opened{r.file, &bytes.Buffer{}})
			w = files[len(files)-1].printed
		}
		if r.fd == 2 {
			s.err = w
		} else {
			s.out = w
		}
	}
	code, exited := s.command(ctx, st.words)
	for _, f := range files {
		_ = s.writeFile(f.file, f.printed.Bytes(), true)
	}
	return code, exited
}

// untar is tar x (-xmf - -C DIR, as kubectl cp into a pod runs it): the
// archive on stdin written under DIR.
func (s *shell) untar(ctx context.Context, args []string) int32 {
	flags := strings.TrimPrefix(args[0], "-")
	dir := "/"
	ok := strings.Trim(flags, "xmfvo") == "" && strings.Contains(flags, "f") && len(args) >= 2 && args[1] == "-"
	switch rest := args[min(2, len(args)):]; {
	case len(rest) == 2 && rest[0] == "-C":
		dir = rest[1]
	case len(rest) > 0:
		ok = false
	}
	if !ok {
		s.unsupported("tar: mockernetes simulates only tar xf - [-C DIR] (%s)\n", strings.Join(args, " "))
		return 1
	}
	r := tar.NewReader(s.in)
	code := int32(0)
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return code
		}
		if err != nil {
			fmt.Fprintf(s.err, "tar: %v\n", err)
			return 1
		}
		name := path.Join(absolute(dir), h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = s.writableDir(name)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(r); err == nil {
				err = s.writeFile(name, data, false)
			}
		default:
			err = fmt.Errorf("mockernetes simulates regular files and directories only")
		}
		if err != nil {
			fmt.Fprintf(s.err, "tar: can't open '%s': %v\n", strings.TrimPrefix(name, "/"), err)
			code = 1
		}
	}
}

// writableDir: a directory can be made at p (directories are implied by
// the files in them).
func (s *shell) writableDir(p string) error {
	if s.scratch == nil {
		s.unknown = s.unknown || s.program
		return errNotSimulated
	}
	_, _, err := placeOf(s.pod, &s.container, p)
	return err
}

// touch creates each file that is not there.
func (s *shell) touch(args []string) int32 {
	code := int32(0)
	for _, a := range args {
		if err := s.writeFile(a, nil, true); err != nil {
			fmt.Fprintf(s.err, "touch: %s: %v\n", a, err)
			code = 1
		}
	}
	return code
}

// mkdir [-p] DIR...: nothing to do where the container can write.
func (s *shell) mkdir(args []string) int32 {
	code := int32(0)
	for _, a := range args {
		if a == "-p" {
			continue
		}
		if err := s.writableDir(absolute(a)); err != nil {
			fmt.Fprintf(s.err, "mkdir: can't create directory '%s': %v\n", a, err)
			code = 1
		}
	}
	return code
}

// test EXPR: -d -e -f -s FILE, -n -z STRING, S = S, S != S, or one
// string (true unless empty). Whether an image's own file exists is not
// known: that is unsupported.
func (s *shell) test(ctx context.Context, args []string) int32 {
	truth := func(b bool) int32 {
		if b {
			return 0
		}
		return 1
	}
	switch {
	case len(args) == 0:
		return 1
	case len(args) == 1:
		return truth(args[0] != "")
	case len(args) == 2 && args[0] == "-n":
		return truth(args[1] != "")
	case len(args) == 2 && args[0] == "-z":
		return truth(args[1] == "")
	case len(args) == 3 && args[1] == "=":
		return truth(args[0] == args[2])
	case len(args) == 3 && args[1] == "!=":
		return truth(args[0] != args[2])
	case len(args) == 2 && slices.Contains([]string{"-d", "-e", "-f", "-s"}, args[0]):
		files, p := s.files(ctx), absolute(args[1])
		f, isFile := files[p]
		dir := isDir(files, p) || s.isMount(p)
		if !isFile && !dir && !s.mounted(p) {
			s.unsupported("test: %s: %s\n", args[1], s.missing(p))
			return 2
		}
		switch args[0] {
		case "-d":
			return truth(dir)
		case "-e":
			return truth(dir || isFile)
		case "-f":
			return truth(isFile)
		}
		if !isFile {
			return 1
		}
		content, err := f()
		return truth(err == nil && len(content) > 0)
	}
	s.unsupported("sh: mockernetes does not simulate test %s\n", strings.Join(args, " "))
	return 2
}
