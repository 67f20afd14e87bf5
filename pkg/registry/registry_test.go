package registry

import (
	"testing"

	genericapiserver "k8s.io/apiserver/pkg/server"
	appsrest "k8s.io/kubernetes/pkg/registry/apps/rest"
	authorizationrest "k8s.io/kubernetes/pkg/registry/authorization/rest"
	rbacrest "k8s.io/kubernetes/pkg/registry/rbac/rest"

	"github.com/mockernetes/mockernetes/pkg/listcache"
)

// Wrapping a provider for the list cache keeps its post-start hook
// (upstream's installer finds it by type assertion) and adds none.
func TestCachedListsKeepHooks(t *testing.T) {
	cache := listcache.New(0)
	withHook := cachedLists(rbacrest.RESTStorageProvider{}, cache)
	hooks, ok := withHook.(genericapiserver.PostStartHookProvider)
	if !ok {
		t.Fatal("rbac's provider lost its post-start hook")
	}
	if name, _, err := hooks.PostStartHook(); err != nil || name != "rbac/bootstrap-roles" {
		t.Errorf("hook %q, %v", name, err)
	}
	if withHook.GroupName() != "rbac.authorization.k8s.io" {
		t.Errorf("group %q", withHook.GroupName())
	}
	if _, ok := cachedLists(appsrest.StorageProvider{}, cache).(genericapiserver.PostStartHookProvider); ok {
		t.Error("apps's provider gained a post-start hook")
	}
}

// A group that is not served (authorization without an authorizer) gives
// an empty APIGroupInfo: wrapping leaves it alone instead of failing.
func TestCachedListsGroupNotServed(t *testing.T) {
	p := cachedLists(authorizationrest.RESTStorageProvider{}, listcache.New(0))
	info, err := p.NewRESTStorage(DefaultResourceConfig(), nil)
	if err != nil || info.NegotiatedSerializer != nil || len(info.VersionedResourcesStorageMap) != 0 {
		t.Errorf("%+v, %v", info, err)
	}
}
