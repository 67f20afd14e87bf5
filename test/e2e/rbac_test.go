package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// With --authorization-mode=RBAC: a kubeconfig minted by `mockernetes
// kubeconfig` for a user of a group bound to the aggregated `view` role
// lists pods and is refused a create with upstream's 403; `kubectl auth
// can-i` and SubjectAccessReview answer for it; only system:masters may
// use the test-control API.
func TestRBACIdentities(t *testing.T) {
	s := startTestServer(t, "--authorization-mode", "Node,RBAC")
	admin := s.client(t)
	ctx := t.Context()
	cli := func(args ...string) (string, string, error) {
		cmd := exec.Command(mockernetesBin, args...)
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, stderr, err := cli("kubeconfig", "--user", "alice", "--group", "dev", "--kubeconfig", s.kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig: %v %s", err, stderr)
	}
	aliceKubeconfig := filepath.Join(t.TempDir(), "alice")
	if err := os.WriteFile(aliceKubeconfig, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	aliceConfig, err := clientcmd.BuildConfigFromFlags("", aliceKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	alice := kubernetes.NewForConfigOrDie(aliceConfig)

	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "dev-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "dev"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// `view` is aggregated: the clusterrole-aggregation controller fills in
	// its rules, then the authorizer's informers see them.
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("alice, bound to view, lists pods: %v", err)
	}
	_, err = alice.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}, metav1.CreateOptions{})
	if want := `pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "default"`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("alice creates a pod: %v, want %q", err, want)
	}

	for name, bin := range kubectls(t) {
		for _, tc := range []struct{ verb, want string }{{"list", "yes"}, {"create", "no"}} {
			cmd := exec.CommandContext(ctx, bin, "--kubeconfig", aliceKubeconfig, "auth", "can-i", tc.verb, "pods", "-n", "default")
			got, _ := cmd.Output() // can-i exits 1 on "no"
			if strings.TrimSpace(string(got)) != tc.want {
				t.Errorf("%s auth can-i %s pods as alice: %q, want %q", name, tc.verb, got, tc.want)
			}
		}
	}
	review, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "alice", Groups: []string{"dev"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "delete", Resource: "pods"},
	}}, metav1.CreateOptions{})
	if err != nil || review.Status.Allowed {
		t.Errorf("SubjectAccessReview of alice deleting pods: %v %+v", err, review.Status)
	}

	if _, stderr, err := cli("settle", "--kubeconfig", aliceKubeconfig); err == nil || !strings.Contains(stderr, "forbidden") {
		t.Errorf("alice uses the test-control API: %v %s", err, stderr)
	}
	if _, stderr, err := cli("kubeconfig", "--kubeconfig", s.kubeconfig); err == nil || !strings.Contains(stderr, "--user is required") {
		t.Errorf("kubeconfig without --user: %v %s", err, stderr)
	}
}
