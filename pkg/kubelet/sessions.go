package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/kubernetes/pkg/apis/core"
	utilexec "k8s.io/utils/exec"
)

// The streaming server's timeouts, as the kubelet's CRI streaming server
// has them.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommandserver.DefaultStreamCreationTimeout
)

// addSessions adds the kubelet server's exec, attach and portForward
// routes; the sessions are served by upstream's CRI streaming handlers
// (SPDY and WebSocket), with the simulation behind them.
func (s *nodeServer) addSessions(c *restful.Container) {
	for _, route := range []struct {
		path   string
		handle restful.RouteFunction
		params []string
	}{
		{"/exec", s.getExec, []string{"/{podNamespace}/{podID}/{containerName}", "/{podNamespace}/{podID}/{uid}/{containerName}"}},
		{"/attach", s.getAttach, []string{"/{podNamespace}/{podID}/{containerName}", "/{podNamespace}/{podID}/{uid}/{containerName}"}},
		{"/portForward", s.getPortForward, []string{"/{podNamespace}/{podID}", "/{podNamespace}/{podID}/{uid}"}},
	} {
		ws := new(restful.WebService)
		ws.Path(route.path)
		for _, p := range route.params {
			ws.Route(ws.GET(p).To(route.handle).Operation("get" + route.path[1:]))
			ws.Route(ws.POST(p).To(route.handle).Operation("get" + route.path[1:]))
		}
		c.Add(ws)
	}
}

// session finds the running container a request names, with the stream
// options it asks for, answering as the kubelet does when it cannot: 400
// for bad options, 404 "pod does not exist" for a pod it does not run, and
// the runtime's "container not found" (500) for a container that is not
// running.
func (s *nodeServer) session(req *restful.Request, resp *restful.Response) (session, *remotecommandserver.Options, bool) {
	opts, err := remotecommandserver.NewOptions(req.Request)
	if err != nil {
		_ = resp.WriteError(http.StatusBadRequest, err)
		return session{}, nil, false
	}
	pod, ok := s.pod(req.PathParameter("podNamespace"), req.PathParameter("podID"))
	if !ok {
		_ = resp.WriteError(http.StatusNotFound, fmt.Errorf("pod does not exist"))
		return session{}, nil, false
	}
	name := req.PathParameter("containerName")
	uid := types.UID(req.PathParameter("uid"))
	// Any running container: a sidecar, an ephemeral one (kubectl debug
	// attaches to it).
	c := containerSpec(pod, name)
	for _, st := range slices.Concat(pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses) {
		if st.Name == name && st.State.Running != nil && (uid == "" || uid == pod.UID) && c != nil {
			return session{k: s.k, pod: pod, container: *c, run: st.RestartCount}, opts, true
		}
	}
	resp.WriteHeader(http.StatusInternalServerError)
	_, _ = fmt.Fprintf(resp, "container not found (%q)", name)
	return session{}, nil, false
}

func (s *nodeServer) getExec(req *restful.Request, resp *restful.Response) {
	if x, opts, ok := s.session(req, resp); ok {
		remotecommandserver.ServeExec(resp.ResponseWriter, req.Request, x, "", string(x.pod.UID), x.container.Name,
			req.Request.URL.Query()[core.ExecCommandParam], opts, streamIdleTimeout, streamCreationTimeout, remotecommandserver.SupportedStreamingProtocols)
	}
}

func (s *nodeServer) getAttach(req *restful.Request, resp *restful.Response) {
	if x, opts, ok := s.session(req, resp); ok {
		remotecommandserver.ServeAttach(resp.ResponseWriter, req.Request, x, "", string(x.pod.UID), x.container.Name,
			opts, streamIdleTimeout, streamCreationTimeout, remotecommandserver.SupportedStreamingProtocols)
	}
}

func (s *nodeServer) getPortForward(req *restful.Request, resp *restful.Response) {
	opts, err := portforward.NewV4Options(req.Request)
	if err != nil {
		_ = resp.WriteError(http.StatusBadRequest, err)
		return
	}
	pod, ok := s.pod(req.PathParameter("podNamespace"), req.PathParameter("podID"))
	if !ok {
		_ = resp.WriteError(http.StatusNotFound, fmt.Errorf("pod does not exist"))
		return
	}
	if uid := types.UID(req.PathParameter("uid")); uid != "" && uid != pod.UID {
		_ = resp.WriteError(http.StatusNotFound, fmt.Errorf("pod not found"))
		return
	}
	portforward.ServePortForward(resp.ResponseWriter, req.Request, session{k: s.k, pod: pod}, pod.Name, string(pod.UID),
		opts, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// session is one exec, attach or port-forward on a running container (for
// port-forward, on the pod).
type session struct {
	k         *Kubelet
	pod       *corev1.Pod
	container corev1.Container
	run       int32
}

// ExecInContainer answers a command: the last exec rule that matches it,
// or else the simulated shell.
func (x session) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, stderr io.WriteCloser, tty bool, _ <-chan remotecommandserver.TerminalSize, _ time.Duration) error {
	stdin, stdout, errOut := streams(in, out, stderr, tty)
	b := x.k.behaviourOf(ctx, x.pod, x.container)
	for _, r := range slices.Backward(b.exec) {
		if !matchCommand(r.Command, cmd) {
			continue
		}
		if r.Local != nil {
			return x.k.runLocal(ctx, r.Local, stdin, stdout, errOut)
		}
		_, _ = io.WriteString(stdout, r.Stdout)
		_, _ = io.WriteString(errOut, r.Stderr)
		if r.Stdin == "echo" {
			_, _ = io.Copy(stdout, stdin)
		}
		return exitStatus(r.ExitCode)
	}
	sh := x.shell(stdin, stdout, errOut, tty)
	return exitStatus(sh.run(ctx, cmd))
}

// AttachContainer joins the container's streams: a container reading its
// stdin gets what the client sends (a shell runs it; the container ends
// when the session does, if its stdin is once-only, or when the shell
// exits); any other prints its run's output and follows it until it exits,
// echoing or ignoring stdin as its behaviour says.
func (x session) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, stderr io.WriteCloser, tty bool, _ <-chan remotecommandserver.TerminalSize) error {
	stdin, stdout, errOut := streams(in, out, stderr, tty)
	b := x.k.behaviourOf(ctx, x.pod, x.container)
	if b.interactive {
		// What the container prints goes to its log too, as a
		// container's output does.
		logged := &logWriter{logs: x.k.config.Logs, pod: x.pod.UID, container: x.container.Name, run: x.run}
		stdout, errOut = io.MultiWriter(stdout, logged), io.MultiWriter(errOut, logged)
		var code int32
		exited := x.container.StdinOnce
		if b.shell {
			sh := x.shell(stdin, stdout, errOut, tty)
			code, exited = sh.interactive(ctx, tty, x.container.StdinOnce)
		} else if b.stdin == "echo" {
			_, _ = io.Copy(stdout, stdin)
		} else {
			_, _ = io.Copy(io.Discard, stdin)
		}
		logged.flush() // before the container's log ends with it
		if exited && ctx.Err() == nil {
			x.k.sessionEnded(x.pod, x.container.Name, x.run, code)
		}
		return nil
	}
	if in != nil {
		go func() {
			if b.stdin == "echo" {
				_, _ = io.Copy(stdout, stdin)
			} else {
				_, _ = io.Copy(io.Discard, stdin)
			}
		}()
	}
	logs := x.k.config.Logs.Open(ctx, x.pod.UID, x.container.Name, x.run, LogOptions{Follow: true})
	defer logs.Close()
	_, _ = io.Copy(stdout, logs)
	return nil
}

// logWriter appends the complete lines written to a container run's log.
type logWriter struct {
	logs      *Logs
	pod       types.UID
	container string
	run       int32
	mu        sync.Mutex
	partial   []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.logs.Append(w.pod, w.container, w.run, strings.TrimSuffix(string(w.partial[:i]), "\r"))
		w.partial = w.partial[i+1:]
	}
}

func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.logs.Append(w.pod, w.container, w.run, string(w.partial))
		w.partial = nil
	}
}

// PortForward connects stream to where the pod's port is forwarded, or
// fails as the container runtime does when nothing listens on the port.
func (x session) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	addr, ok := x.k.forwardTarget(x.pod, port)
	if !ok {
		return fmt.Errorf("failed to execute portforward in network namespace %q: failed to connect to localhost:%d inside namespace %q, "+
			"IPv4: dial tcp4 127.0.0.1:%d: connect: connection refused IPv6 dial tcp6 [::1]:%d: connect: connection refused ",
			"/var/run/netns/cni-"+string(x.pod.UID), port, x.pod.UID, port, port)
	}
	conn, err := x.k.config.Dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to connect to %s (the pod's port %d is forwarded there): %v", addr, port, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

func (x session) shell(in io.Reader, out, err io.Writer, tty bool) *shell {
	sh := x.k.newShell(x.pod, x.container)
	sh.in, sh.out, sh.err, sh.tty = in, out, err, tty
	return sh
}

// streams are a session's streams, none nil: a terminal has no stderr of
// its own (it is the terminal).
func streams(in io.Reader, out, stderr io.Writer, tty bool) (io.Reader, io.Writer, io.Writer) {
	if in == nil {
		in = eof{}
	}
	if out == nil {
		out = io.Discard
	}
	if stderr == nil || tty {
		stderr = out
	}
	return in, out, stderr
}

type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }

// exitStatus is how the streaming server learns a command's exit status.
func exitStatus(code int32) error {
	if code == 0 {
		return nil
	}
	return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: int(code)}
}

// runLocal runs a rule's local command with the session's streams.
func (k *Kubelet) runLocal(ctx context.Context, argv []string, in io.Reader, out, stderr io.Writer) error {
	if !k.config.AllowLocalExec {
		return fmt.Errorf("exec rules with a local command need a server started with --allow-local-exec")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitStatus(int32(exitErr.ExitCode() & 0xff))
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "%v\n", err)
		return exitStatus(127)
	}
	return nil
}

// sleep waits d under the time scale, or until ctx ends (false).
func (k *Kubelet) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(k.scale(d))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// forwardTarget is where port of pod is forwarded: the last forwarding of
// a container that declares the port, or else of any container.
func (k *Kubelet) forwardTarget(pod *corev1.Pod, port int32) (string, bool) {
	var declared, any string
	for _, c := range pod.Spec.Containers {
		declares := slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port })
		for _, f := range behaviourOf(pod, c, k.Rules()).forwards {
			if f.Port != 0 && f.Port != port {
				continue
			}
			any = f.Address
			if declares {
				declared = f.Address
			}
		}
	}
	if declared != "" {
		return declared, true
	}
	return any, any != ""
}

// sessions holds the exit status of containers whose attached session
// ended them, until the pod's next sync writes it.
type sessions struct {
	mu    sync.Mutex
	ended map[types.UID]map[string]int32
}

// sessionEnded records that a container reading its stdin ended with its
// session, and has the pod synced.
func (k *Kubelet) sessionEnded(pod *corev1.Pod, container string, run int32, code int32) {
	k.sessions.mu.Lock()
	if k.sessions.ended[pod.UID] == nil {
		k.sessions.ended[pod.UID] = map[string]int32{}
	}
	k.sessions.ended[pod.UID][fmt.Sprintf("%s/%d", container, run)] = code
	k.sessions.mu.Unlock()
	if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
		k.queue.Add(key)
	} else {
		utilruntime.HandleError(err)
	}
}

// endedWith is the exit status a session gave a container run, if it ended.
func (k *Kubelet) endedWith(uid types.UID, container string, run int32) (int32, bool) {
	k.sessions.mu.Lock()
	defer k.sessions.mu.Unlock()
	code, ok := k.sessions.ended[uid][fmt.Sprintf("%s/%d", container, run)]
	return code, ok
}

func (k *Kubelet) forgetSessions(uid types.UID) {
	k.sessions.mu.Lock()
	defer k.sessions.mu.Unlock()
	delete(k.sessions.ended, uid)
}
