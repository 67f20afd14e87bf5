package kubelet

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Addresses are held while their pod lives: 1,000 pods come and go on one
// node (at most 100 alive at once), no two live pods share an address, and
// a freed address comes back only after the rest of the range was used.
func TestIPAMNeverShares(t *testing.T) {
	a := newIPAM()
	live := map[string]types.UID{}
	var order []types.UID
	ipOf := map[types.UID]string{}
	for i := range 1000 {
		uid := types.UID(fmt.Sprint("pod-", i))
		ip, err := a.allocate("node-1", 3, podRef{uid: uid})
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := a.allocate("node-1", 3, podRef{uid: uid}); again != ip {
			t.Fatalf("pod %s asked again: %s, then %s", uid, ip, again)
		}
		if other, ok := live[ip]; ok {
			t.Fatalf("%s given to %s while %s holds it", ip, uid, other)
		}
		live[ip], ipOf[uid] = uid, ip
		order = append(order, uid)
		if len(order) > 100 {
			gone := order[0]
			order = order[1:]
			a.release(gone)
			delete(live, ipOf[gone])
		}
	}
	if ipOf["pod-0"] != "10.244.3.2" || ipOf["pod-252"] != "10.244.3.254" || ipOf["pod-253"] != "10.244.3.2" {
		t.Errorf("order of addresses: first %s, 253rd %s, 254th %s", ipOf["pod-0"], ipOf["pod-252"], ipOf["pod-253"])
	}
}

func TestIPAMFullAndReserved(t *testing.T) {
	a := newIPAM()
	restored := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "restored"}, Status: corev1.PodStatus{PodIP: "10.244.0.2"}}
	a.reserve("node-1", 0, restored)
	for i := range lastHost - firstHost {
		ip, err := a.allocate("node-1", 0, podRef{uid: types.UID(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		if ip == "10.244.0.2" {
			t.Fatalf("pod %d got the restored pod's address", i)
		}
	}
	if _, err := a.allocate("node-1", 0, podRef{uid: "one-too-many"}); err == nil {
		t.Fatal("an address beyond the range")
	}
	a.release("restored")
	if ip, err := a.allocate("node-1", 0, podRef{uid: "next", name: "next"}); err != nil || ip != "10.244.0.2" {
		t.Fatalf("after a release: %q, %v", ip, err)
	}
	if ref, ok := a.holder("10.244.0.2"); !ok || ref.name != "next" {
		t.Errorf("holder: %+v %v", ref, ok)
	}
}
