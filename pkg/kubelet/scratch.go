package kubelet

import (
	"errors"
	"path"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// scratch holds what the containers of the pods wrote (through exec's
// shell: redirections, tar x of kubectl cp): a pod's emptyDir volumes,
// shared by its containers, and each container's own file system (its
// image's files are not simulated, but what it wrote there is, until it
// is started again). A pod's writes go with it.
type scratch struct {
	mu sync.Mutex
	// by pod, then by where: "volume/<name>" or "container/<name>", then
	// by clean path (inside the volume: relative; in a container: absolute).
	byPod map[types.UID]map[string]map[string][]byte
}

func newScratch() *scratch {
	return &scratch{byPod: map[types.UID]map[string]map[string][]byte{}}
}

// where is written to: a volume's or a container's files.
func volumeWhere(name string) string    { return "volume/" + name }
func containerWhere(name string) string { return "container/" + name }

// write writes data to p in where, or appends it.
func (s *scratch) write(pod types.UID, where, p string, data []byte, appending bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wheres := s.byPod[pod]
	if wheres == nil {
		wheres = map[string]map[string][]byte{}
		s.byPod[pod] = wheres
	}
	files := wheres[where]
	if files == nil {
		files = map[string][]byte{}
		wheres[where] = files
	}
	if appending {
		files[p] = append(files[p][:len(files[p]):len(files[p])], data...)
	} else {
		files[p] = append([]byte(nil), data...)
	}
}

// files are what was written to where, by path.
func (s *scratch) files(pod types.UID, where string) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for p, data := range s.byPod[pod][where] {
		out[p] = data // never changed in place: writes replace or reallocate
	}
	return out
}

// restarted drops what a container wrote to its own files: a container
// started again has a fresh file system (its volumes keep theirs).
func (s *scratch) restarted(pod types.UID, container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byPod[pod], containerWhere(container))
}

// forget drops a pod's writes (it was deleted).
func (s *scratch) forget(pod types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byPod, pod)
}

// errReadOnly is the answer to a write into a ConfigMap, Secret, downward
// API or projected volume, which the kubelet mounts read-only.
var errReadOnly = errors.New("Read-only file system")

// errIsDir: the path is a directory (a volume's mount point).
var errIsDir = errors.New("Is a directory")

// errNotSimulated: the file is where the simulation does not hold files (a
// hostPath, a claim's or another volume, or a file the kubelet manages).
var errNotSimulated = errors.New(notSimulated)

// writeFile writes (or appends) data to path p of container c of pod, as
// the container would: into the emptyDir volume mounted there, or into its
// own file system.
func (s *scratch) writeFile(pod *corev1.Pod, c *corev1.Container, p string, data []byte, appending bool) error {
	where, name, err := placeOf(pod, c, p)
	if err != nil {
		return err
	}
	if name == "." {
		return errIsDir
	}
	s.write(pod.UID, where, name, data, appending)
	return nil
}

// placeOf is where a write to p of container c of pod lands: an emptyDir
// volume (where, and the path inside it) or the container's own files
// (where, and p), or why it cannot be written there.
func placeOf(pod *corev1.Pod, c *corev1.Container, p string) (where, name string, err error) {
	p = absolute(p)
	// The innermost mount that p is in, if any.
	var in *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		mount := path.Clean(m.MountPath)
		if (p == mount || strings.HasPrefix(p, strings.TrimSuffix(mount, "/")+"/")) && (in == nil || len(mount) > len(path.Clean(in.MountPath))) {
			in = &c.VolumeMounts[i]
		}
	}
	if in == nil {
		switch p {
		case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/":
			return "", "", errNotSimulated
		}
		return containerWhere(c.Name), p, nil
	}
	mount := path.Clean(in.MountPath)
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.Name != in.Name:
			continue
		case v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil || in.ReadOnly:
			return "", "", errReadOnly
		case v.EmptyDir != nil && in.SubPath == "":
			if p == mount {
				return volumeWhere(v.Name), ".", nil
			}
			return volumeWhere(v.Name), strings.TrimPrefix(p, mount+"/"), nil
		}
	}
	return "", "", errNotSimulated
}
