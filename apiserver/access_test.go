package apiserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/access"
	"github.com/sondehq/sonde/lab/kubetest"
	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/protocols"
)

// TestReadersThroughKubernetes puts a hub behind a real kube-apiserver as
// the aggregated API v1alpha1.sonde.dev and reads it as three users: the
// admin (a client certificate in system:masters) sees every entry; alice
// (a ServiceAccount token, allowed to get traffic in namespace a) sees a's
// entries alone in the list, one entry by ID, stats, the service map, the
// HAR export and the live stream, and is told how many were withheld; bob
// (no binding) is refused. Nobody reaches the hub's reads directly, even
// with a certificate of the cluster's CA and a forged user header.
func TestReadersThroughKubernetes(t *testing.T) {
	link := netlab.HostLinkForTest(t)
	env := kubetest.Start(t, kubetest.Options{})
	ctx := t.Context()
	const hubNS, hubName = "sonde", "sonde-hub"
	if err := env.CreateNamespaces(ctx, hubNS, "a", "b"); err != nil {
		t.Fatal(err)
	}

	// The APIService the API server reaches the hub by, and the Service
	// it names, its endpoint the hub's address in its own network
	// namespace. The hub makes its certificate and tells the API server to
	// trust it, as in the cluster.
	registerAPIService(t, env, hubNS, hubName)
	if _, err := env.Client.CoreV1().Services(hubNS).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: hubName},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 8898}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port, ready := int32(8898), true
	if _, err := env.Client.DiscoveryV1().EndpointSlices(hubNS).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: hubName + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: hubName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{link.IP.String()}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: new("https"), Port: &port}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setup := access.CertSetup{Namespace: hubNS, Secret: "sonde-hub-tls", ConfigMap: "sonde-hub-ca",
		APIService: access.Version + "." + access.Group, Service: hubName, Labels: map[string]string{"app.kubernetes.io/part-of": "sonde"}}
	cert, err := access.EnsureServingCert(ctx, env.Client, setup)
	if err != nil {
		t.Fatal(err)
	}
	again, err := access.EnsureServingCert(ctx, env.Client, setup)
	if err != nil || !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Errorf("a second start made another certificate (%v): restarts would leave agents distrusting the hub", err)
	}
	cm, err := env.Client.CoreV1().ConfigMaps(hubNS).Get(ctx, "sonde-hub-ca", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data[access.CAKey], "BEGIN CERTIFICATE") || cm.Labels["app.kubernetes.io/part-of"] != "sonde" {
		t.Errorf("the agents' CA: %v %v", cm, err)
	}
	fp, err := access.LoadFrontProxyConfig(ctx, env.Client)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := apiserver.New(apiserver.Config{Token: testToken, Access: &apiserver.Access{
		FrontProxy: access.NewFrontProxy(fp), Checker: access.NewReviewer(env.Client.AuthorizationV1().SubjectAccessReviews())},
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	now := time.Now()
	entry := func(target, srcNS, dstNS string, last byte) *protocols.Entry {
		return &protocols.Entry{Protocol: protocols.HTTP1, Start: now, Duration: time.Millisecond,
			Src:     protocols.Endpoint{IP: netip.AddrFrom4([4]byte{10, 244, 1, last}), Port: 40000, Pod: "client-" + target, Namespace: srcNS},
			Dst:     protocols.Endpoint{IP: netip.AddrFrom4([4]byte{10, 244, 2, last}), Port: 80, Pod: "server-" + target, Namespace: dstNS},
			Summary: protocols.Summary{Method: "GET", Target: "/" + target, Status: "200"},
			HTTP: &protocols.HTTPRecord{Request: &protocols.HTTPRequest{Method: "GET", Target: "/" + target, Path: "/" + target, Version: "HTTP/1.1"},
				Response: &protocols.HTTPResponse{Version: "HTTP/1.1", StatusCode: 200}}}
	}
	if err := srv.Ingest(
		entry("a-inside", "a", "a", 1), entry("a-to-b", "a", "b", 2), entry("b-inside", "b", "b", 3),
		entry("b-to-b", "b", "b", 4), entry("host", "", "", 5), entry("outside-to-a", "", "a", 6),
	); err != nil {
		t.Fatal(err)
	}
	ln, err := link.Listen("tcp", net.JoinHostPort(link.IP.String(), "8898"))
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(serveCtx, ln)
	}()
	t.Cleanup(func() { stop(); <-served })

	waitAvailable(t, env)

	// The viewers' role, bound to alice in a alone.
	if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "sonde-traffic-viewer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{access.Group}, Resources: []string{access.Resource, access.Resource + "/proxy"},
			Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	alice := serviceAccountUser(t, env, "a", "alice")
	bob := serviceAccountUser(t, env, "b", "bob")
	if _, err := env.Client.RbacV1().RoleBindings("a").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-sees-a"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "sonde-traffic-viewer"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "alice", Namespace: "a"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	admin := reader{t: t, cfg: env.Config}
	if got := admin.targets("a", "/api/v1/entries"); got != "/a-inside /a-to-b /b-inside /b-to-b /host /outside-to-a" {
		t.Errorf("the admin sees %s", got)
	}
	ar := reader{t: t, cfg: alice}
	const aliceSees = "/a-inside /a-to-b /outside-to-a"
	var page struct {
		Entries  []protocols.Entry
		Total    int
		Withheld int
	}
	if code := ar.getJSON("a", "/api/v1/entries", &page); code != http.StatusOK {
		t.Fatalf("alice's list: HTTP %d", code)
	}
	if got := targetsOf(page.Entries); got != aliceSees || page.Total != 3 || page.Withheld != 3 {
		t.Errorf("alice's list: %s, total %d, withheld %d; want %s, 3, 3", got, page.Total, page.Withheld, aliceSees)
	}
	if got := ar.targets("a", "/api/v1/entries?q="+urlEscape(`target.startsWith("/b")`)); got != "" {
		t.Errorf("alice's query for b's entries finds %s", got)
	}

	// One entry by ID: hers, and not b's, which does not exist for her.
	var all struct{ Entries []protocols.Entry }
	admin.getJSON("a", "/api/v1/entries", &all)
	for _, e := range all.Entries {
		want := http.StatusNotFound
		if strings.Contains(aliceSees, e.Summary.Target) {
			want = http.StatusOK
		}
		if code := ar.getJSON("a", "/api/v1/entries/"+e.ID, nil); code != want {
			t.Errorf("alice reads entry %s (%s): HTTP %d, want %d", e.ID, e.Summary.Target, code, want)
		}
	}

	var stats struct{ Total, Withheld int }
	if ar.getJSON("a", "/api/v1/stats", &stats); stats.Total != 3 || stats.Withheld != 3 {
		t.Errorf("alice's stats: %+v, want 3 entries and 3 withheld", stats)
	}
	var smap struct {
		Nodes    []struct{ ID string }
		Withheld int
	}
	ar.getJSON("a", "/api/v1/servicemap", &smap)
	for _, n := range smap.Nodes {
		if strings.Contains(n.ID, "b-inside") || strings.Contains(n.ID, "b-to-b") || strings.Contains(n.ID, "host") {
			t.Errorf("alice's service map holds %s", n.ID)
		}
	}
	if len(smap.Nodes) != 6 || smap.Withheld != 3 {
		t.Errorf("alice's service map: %d nodes, %d withheld; want 6 and 3", len(smap.Nodes), smap.Withheld)
	}
	har, hdr := ar.get("a", "/api/v1/export/har")
	var harLog struct {
		Log struct {
			Entries []struct{ Request struct{ URL string } }
		}
	}
	if err := json.Unmarshal(har, &harLog); err != nil {
		t.Fatalf("alice's HAR: %v: %s", err, har)
	}
	if len(harLog.Log.Entries) != 3 || hdr.Get("Sonde-Withheld") != "3" {
		t.Errorf("alice's HAR holds %d entries (withheld %q), want 3 (3)", len(harLog.Log.Entries), hdr.Get("Sonde-Withheld"))
	}

	// The live stream: history, then an entry of b and one of a arrive;
	// she gets her three and the new one of a, never b's.
	c := ar.stream("a", "")
	srv.Ingest(entry("b-live", "b", "b", 7), entry("a-live", "a", "a", 8))
	var got []string
	readUntil(t, c, 20*time.Second, func(m streamMsg) bool {
		if m.Type == "entry" {
			got = append(got, m.Entry.Summary.Target)
		}
		return len(got) == 4 || (m.Entry != nil && m.Entry.Summary.Target == "/a-live")
	})
	if strings.Join(got, " ") != aliceSees+" /a-live" {
		t.Errorf("alice's stream: %v", got)
	}

	const aliceSeesLater = "/a-inside /a-live /a-to-b /outside-to-a"
	// Alice's own proxy on her machine, as `sonde proxy` runs it: her
	// token stays in it, the browser holds the session's.
	sess := &apiserver.Session{Token: []byte("0123456789abcdef0123456789abcdef")}
	up, err := apiserver.NewUserProxy(alice, "a", hubName, sess)
	if err != nil {
		t.Fatal(err)
	}
	local := httptest.NewServer(up)
	t.Cleanup(local.Close)
	for _, tt := range []struct {
		name, path, host string
		want             int
	}{
		{"with the session's token", "/api/v1/entries?token=" + string(sess.Token), "", http.StatusOK},
		{"without it", "/api/v1/entries", "", http.StatusUnauthorized},
		{"under a rebinding name", "/api/v1/entries?token=" + string(sess.Token), "rebind.example", http.StatusMisdirectedRequest},
	} {
		req, _ := http.NewRequest(http.MethodGet, local.URL+tt.path, nil)
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Entries []protocols.Entry }
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != tt.want || (tt.want == http.StatusOK && targetsOf(page.Entries) != aliceSeesLater) {
			t.Errorf("alice's proxy %s: HTTP %d, %s", tt.name, resp.StatusCode, targetsOf(page.Entries))
		}
	}
	pc, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(local.URL, "http")+"/api/v1/stream?history=100&token="+string(sess.Token), nil)
	if err != nil {
		t.Fatalf("the stream through alice's proxy: %v", err)
	}
	got = nil
	readUntil(t, pc, 20*time.Second, func(m streamMsg) bool {
		if m.Type == "entry" {
			got = append(got, m.Entry.Summary.Target)
		}
		return len(got) == 4
	})
	pc.Close()
	if slices.Sort(got); strings.Join(got, " ") != aliceSeesLater {
		t.Errorf("the stream through alice's proxy: %v", got)
	}

	// The reviews asked are counted: once per namespace and reader, then
	// cached.
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !regexp.MustCompile(`(?m)^sonde_hub_access_reviews_total [1-9]`).Match(rec.Body.Bytes()) {
		t.Errorf("no reviews counted:\n%s", regexp.MustCompile(`(?m)^sonde_hub_access.*$`).FindAll(rec.Body.Bytes(), -1))
	}

	// Refusals: alice through b, bob anywhere (the API server's RBAC), and
	// anyone at the hub directly.
	if code := ar.getJSON("b", "/api/v1/entries", nil); code != http.StatusForbidden {
		t.Errorf("alice through namespace b: HTTP %d, want 403", code)
	}
	br := reader{t: t, cfg: bob}
	for _, ns := range []string{"a", "b"} {
		if code := br.getJSON(ns, "/api/v1/entries", nil); code != http.StatusForbidden {
			t.Errorf("bob through namespace %s: HTTP %d, want 403", ns, code)
		}
	}
	clusterCert, err := tls.X509KeyPair(env.Config.CertData, env.Config.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "the cluster CA's admin certificate": {clusterCert}} {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: certs}}}
		for _, path := range []string{"/api/v1/entries", apiserver.ProxyPath("a", hubName) + "/api/v1/entries"} {
			req, _ := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(link.IP.String(), "8898")+path, nil)
			req.Header.Set("X-Remote-User", "system:admin")
			req.Header.Set("X-Remote-Group", "system:masters")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "a-inside") {
				t.Errorf("%s at the hub's %s: HTTP %d: %s", name, path, resp.StatusCode, body)
			}
		}
	}
}

// registerAPIService registers v1alpha1.sonde.dev for the hub, with no CA
// yet: the hub sets it.
func registerAPIService(t *testing.T, env *kubetest.Env, ns, name string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": access.Version + "." + access.Group},
		"spec": map[string]any{
			"group": access.Group, "version": access.Version,
			"service":              map[string]any{"namespace": ns, "name": name, "port": int64(8898)},
			"groupPriorityMinimum": int64(1000), "versionPriority": int64(15),
		},
	}}
	if _, err := dyn.Resource(gvr).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitAvailable waits for the API server to find the hub's APIService
// available: it reached the hub and trusted its certificate.
func waitAvailable(t *testing.T, env *kubetest.Env) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	name := access.Version + "." + access.Group
	deadline := time.Now().Add(60 * time.Second)
	for {
		u, err := dyn.Resource(gvr).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == "Available" && m["status"] == "True" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server never found the hub's APIService available: %v", conds)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serviceAccountUser makes a ServiceAccount and returns a client
// configuration holding a token the API server signed for it.
func serviceAccountUser(t *testing.T, env *kubetest.Env, ns, name string) *rest.Config {
	t.Helper()
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// reader reads the hub through the API server as one user.
type reader struct {
	t   *testing.T
	cfg *rest.Config
}

func (r reader) url(ns, path string) string {
	return strings.TrimSuffix(r.cfg.Host, "/") + apiserver.ProxyPath(ns, "sonde-hub") + path
}

func (r reader) do(ns, path string) *http.Response {
	r.t.Helper()
	hc, err := rest.HTTPClientFor(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := hc.Get(r.url(ns, path))
	if err != nil {
		r.t.Fatal(err)
	}
	return resp
}

func (r reader) get(ns, path string) ([]byte, http.Header) {
	r.t.Helper()
	resp := r.do(ns, path)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("GET %s through %s: HTTP %d: %s", path, ns, resp.StatusCode, b)
	}
	return b, resp.Header
}

func (r reader) getJSON(ns, path string, v any) int {
	r.t.Helper()
	resp := r.do(ns, path)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			r.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func (r reader) targets(ns, path string) string {
	r.t.Helper()
	var page struct{ Entries []protocols.Entry }
	if code := r.getJSON(ns, path, &page); code != http.StatusOK {
		r.t.Fatalf("GET %s: HTTP %d", path, code)
	}
	return targetsOf(page.Entries)
}

// stream opens the live stream through the API server.
func (r reader) stream(ns, q string) *websocket.Conn {
	r.t.Helper()
	tc, err := rest.TLSConfigFor(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	d := websocket.Dialer{TLSClientConfig: tc, HandshakeTimeout: 10 * time.Second}
	h := http.Header{}
	if r.cfg.BearerToken != "" {
		h.Set("Authorization", "Bearer "+r.cfg.BearerToken)
	}
	u := "wss" + strings.TrimPrefix(r.url(ns, "/api/v1/stream?history=100&q="+urlEscape(q)), "https")
	c, resp, err := d.Dial(u, h)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		r.t.Fatalf("stream through the API server: %v (HTTP %d)", err, code)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

func targetsOf(es []protocols.Entry) string {
	var ts []string
	for _, e := range es {
		ts = append(ts, e.Summary.Target)
	}
	// In name order: what matters is which entries, not their order.
	slices.Sort(ts)
	return strings.Join(ts, " ")
}
