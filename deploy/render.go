package deploy

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The files kubectl applies; kustomization.yaml says which and in what order.
//
//go:embed *.yaml
var files embed.FS

// Names the files give, which the CLI looks objects up by.
const (
	DefaultNamespace = "sonde"
	HubName          = "sonde-hub"
	// DefaultStorageLimit is the hub's --storage-limit in hub.yaml.
	DefaultStorageLimit = 1 << 30
	AgentName           = "sonde-agent"
	TokenSecret         = "sonde-token"
	// APIService is the name readers reach the hub by through the
	// kube-apiserver; HubTLSSecret holds the hub's serving certificate and
	// HubCAConfigMap its CA for the agents (the hub makes both).
	APIService     = "v1alpha1.sonde.dev"
	HubTLSSecret   = "sonde-hub-tls"
	HubCAConfigMap = "sonde-hub-ca"
	TokenKey       = "token"
	// HubPort serves ingest, the API and the UI.
	HubPort = 8898
	// LabelPartOf marks every object Sonde installs; `sonde clean` deletes
	// by it. LabelName tells the hub's pods from the agents'.
	LabelPartOf = "app.kubernetes.io/part-of"
	LabelName   = "app.kubernetes.io/name"
	PartOf      = "sonde"

	// The ServiceAccount the cluster signs the default ingest token for.
	ingestAccount = "sonde-ingest"
	hubDataVolume = "data"
	hubDataClaim  = "sonde-hub-data"
)

var (
	// ErrOptions: an Options field cannot be rendered.
	ErrOptions = errors.New("invalid install options")
	// errFiles: the embedded files do not hold what Render edits.
	errFiles = errors.New("embedded manifests")
)

// Storage is where the hub keeps its store.
type Storage string

const (
	// StorageEmptyDir keeps entries for the life of the hub's pod.
	StorageEmptyDir Storage = "emptydir"
	// StoragePVC keeps them on a PersistentVolumeClaim across restarts.
	StoragePVC Storage = "pvc"
)

// Options are what the CLI changes in the files. The zero value renders
// the files as `kubectl apply -k` would apply them.
type Options struct {
	// Namespace to install into; empty means DefaultNamespace. Names of
	// cluster-wide objects get the namespace as a suffix when it is not the
	// default, so that two installs do not share them.
	Namespace string
	// Image of both the hub and the agents; empty keeps the files' image.
	Image string
	// Token, when set, goes into an opaque Secret. Empty leaves the files'
	// Secret, which the cluster's token controller fills at install.
	Token string

	// StorageLimit bounds the hub's store, in bytes; zero keeps the files'
	// limit (DefaultStorageLimit). The volume gets a quarter more room than
	// the store may use.
	StorageLimit int64
	// Storage picks the hub's volume; empty means StorageEmptyDir.
	Storage Storage
	// StorageClass of the claim with StoragePVC; empty means the
	// cluster's default class.
	StorageClass string

	// NoRedact lets credentials leave the nodes as they were captured.
	NoRedact bool
	// RedactNames and RedactPatterns extend what the agents redact: they
	// become --redact-name and --redact-pattern arguments, added to those
	// the files have.
	RedactNames    []string
	RedactPatterns []string
	// Pods is a regular expression (Go syntax) that pod names must match
	// somewhere to be captured; empty matches every pod.
	Pods string
	// Namespaces limits capture to pods of these namespaces; empty means
	// all but ExcludeNamespaces. Sonde's own namespace is always excluded.
	Namespaces        []string
	ExcludeNamespaces []string

	// Labels go on every object besides LabelPartOf.
	Labels map[string]string
}

func (o *Options) namespace() string {
	if o.Namespace == "" {
		return DefaultNamespace
	}
	return o.Namespace
}

// ClusterName is the name of Sonde's cluster-wide objects (ClusterRole and
// ClusterRoleBinding) for an install into namespace ns.
func ClusterName(ns string) string {
	if ns == "" || ns == DefaultNamespace {
		return PartOf
	}
	return PartOf + "-" + ns
}

func (o *Options) check() error {
	if errs := validation.IsDNS1123Label(o.namespace()); len(errs) > 0 {
		return fmt.Errorf("%w: namespace %q: %s", ErrOptions, o.Namespace, strings.Join(errs, "; "))
	}
	if _, err := regexp.Compile(o.Pods); err != nil {
		return fmt.Errorf("%w: pod pattern: %w", ErrOptions, err)
	}
	for _, ns := range slices.Concat(o.Namespaces, o.ExcludeNamespaces) {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("%w: namespace %q: %s", ErrOptions, ns, strings.Join(errs, "; "))
		}
	}
	switch o.Storage {
	case "", StorageEmptyDir, StoragePVC:
	default:
		return fmt.Errorf("%w: storage %q: want %q or %q", ErrOptions, o.Storage, StorageEmptyDir, StoragePVC)
	}
	if o.StorageLimit < 0 {
		return fmt.Errorf("%w: negative storage limit %d", ErrOptions, o.StorageLimit)
	}
	return nil
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // only on a programming error in the lists above
		}
	}
	return s
}()

// Render returns the objects to install, in the order to apply them.
func Render(o Options) ([]*unstructured.Unstructured, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	objs, err := load()
	if err != nil {
		return nil, err
	}
	ns := o.namespace()
	var out []runtime.Object
	for _, obj := range objs {
		keep, err := o.edit(obj, ns)
		if err != nil {
			return nil, err
		}
		if keep {
			out = append(out, obj)
		}
	}
	if o.Storage == StoragePVC {
		// Before the hub, which mounts it.
		at := slices.IndexFunc(out, func(obj runtime.Object) bool { _, ok := obj.(*appsv1.Deployment); return ok })
		out = slices.Insert(out, max(at, 0), runtime.Object(o.claim(ns)))
	}
	us := make([]*unstructured.Unstructured, 0, len(out))
	for _, obj := range out {
		u, err := toUnstructured(obj)
		if err != nil {
			return nil, err
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelPartOf] = PartOf
		for k, v := range o.Labels {
			labels[k] = v
		}
		u.SetLabels(labels)
		us = append(us, u)
	}
	return us, nil
}

// load decodes the files kustomization.yaml lists, in its order.
func load() ([]runtime.Object, error) {
	k, err := files.ReadFile("kustomization.yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFiles, err)
	}
	var kust struct{ Resources []string }
	if err := yaml.Unmarshal(k, &kust); err != nil {
		return nil, fmt.Errorf("%w: kustomization.yaml: %w", errFiles, err)
	}
	dec := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	var objs []runtime.Object
	for _, name := range kust.Resources {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errFiles, err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", errFiles, name, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			obj, gvk, err := dec.Decode(doc, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", errFiles, name, err)
			}
			obj.GetObjectKind().SetGroupVersionKind(*gvk)
			objs = append(objs, obj)
		}
	}
	return objs, nil
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// edit applies the options to one object and says whether to keep it.
func (o *Options) edit(obj runtime.Object, ns string) (bool, error) {
	if m, ok := obj.(metav1.Object); ok && m.GetNamespace() != "" {
		m.SetNamespace(ns)
	}
	switch obj := obj.(type) {
	case *corev1.Namespace:
		obj.Name = ns
	case *corev1.ServiceAccount:
		return o.Token == "" || obj.Name != ingestAccount, nil
	case *corev1.Secret:
		if o.Token != "" && obj.Name == TokenSecret {
			obj.Type = corev1.SecretTypeOpaque
			obj.Annotations = nil
			obj.Data = map[string][]byte{TokenKey: []byte(o.Token)}
		}
	case *rbacv1.ClusterRole:
		obj.Name = ClusterName(ns)
	case *rbacv1.ClusterRoleBinding:
		obj.Name = ClusterName(ns)
		obj.RoleRef.Name = ClusterName(ns)
		for i := range obj.Subjects {
			obj.Subjects[i].Namespace = ns
		}
	case *appsv1.Deployment:
		return true, o.editHub(&obj.Spec.Template.Spec)
	case *appsv1.DaemonSet:
		return true, o.editAgent(&obj.Spec.Template.Spec, ns)
	}
	return true, nil
}

func (o *Options) editHub(spec *corev1.PodSpec) error {
	c, err := container(spec, "hub")
	if err != nil {
		return err
	}
	o.setImage(c)
	limit := o.storageLimit()
	if o.StorageLimit > 0 {
		c.Args = setArg(c.Args, "--storage-limit", formatSize(limit))
	}
	room := volumeRoom(limit)
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.Name != hubDataVolume {
			continue
		}
		if o.Storage == StoragePVC {
			v.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: hubDataClaim}}
		} else {
			v.VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &room}}
		}
		return nil
	}
	return fmt.Errorf("%w: the hub has no volume %q", errFiles, hubDataVolume)
}

func (o *Options) storageLimit() int64 {
	if o.StorageLimit > 0 {
		return o.StorageLimit
	}
	return DefaultStorageLimit
}

// formatSize writes bytes the way `sonde hub --storage-limit` reads them.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// volumeRoom leaves a quarter more than the store's limit, for the
// files a compaction writes before it removes the ones it replaces.
func volumeRoom(limit int64) resource.Quantity {
	return *resource.NewQuantity(limit+limit/4, resource.BinarySI)
}

func (o *Options) claim(ns string) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: hubDataClaim, Namespace: ns, Labels: map[string]string{
			LabelName: HubName, "app.kubernetes.io/component": "hub",
		}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: volumeRoom(o.storageLimit())}},
		},
	}
	if o.StorageClass != "" {
		pvc.Spec.StorageClassName = &o.StorageClass
	}
	pvc.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"))
	return pvc
}

func (o *Options) editAgent(spec *corev1.PodSpec, ns string) error {
	c, err := container(spec, "agent")
	if err != nil {
		return err
	}
	o.setImage(c)
	exclude := slices.Concat([]string{ns}, o.ExcludeNamespaces)
	slices.Sort(exclude)
	c.Args = setArg(c.Args, "--hub", fmt.Sprintf("http://%s.%s.svc:%d", HubName, ns, HubPort))
	if o.NoRedact {
		c.Args = setArg(c.Args, "--no-redact", "true")
	}
	for _, n := range o.RedactNames {
		c.Args = append(c.Args, "--redact-name="+n)
	}
	for _, p := range o.RedactPatterns {
		c.Args = append(c.Args, "--redact-pattern="+p)
	}
	c.Args = setArg(c.Args, "--pods", o.Pods)
	c.Args = setArg(c.Args, "--namespaces", strings.Join(o.Namespaces, ","))
	c.Args = setArg(c.Args, "--exclude-namespaces", strings.Join(slices.Compact(exclude), ","))
	return nil
}

func (o *Options) setImage(c *corev1.Container) {
	if o.Image != "" {
		c.Image = o.Image
	}
}

func container(spec *corev1.PodSpec, name string) (*corev1.Container, error) {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no container %q", errFiles, name)
}

// setArg sets "--name=value" in args, in place of the flag's last
// occurrence or at the end.
func setArg(args []string, name, value string) []string {
	arg := name + "=" + value
	for i := len(args) - 1; i >= 0; i-- {
		if args[i] == name || strings.HasPrefix(args[i], name+"=") {
			args[i] = arg
			return args
		}
	}
	return append(args, arg)
}

func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", gvk.Kind, err)
	}
	// Typed objects carry fields an apply should not send: an empty status,
	// an empty spec (a Namespace's) and null creation timestamps.
	delete(m, "status")
	if spec, ok := m["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(m, "spec")
	}
	prune(m)
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

func prune(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			prune(v)
		case []any:
			for _, e := range v {
				if e, ok := e.(map[string]any); ok {
					prune(e)
				}
			}
		}
	}
}

// YAML writes objects as one multi-document YAML stream.
func YAML(w io.Writer, objs []*unstructured.Unstructured) error {
	for i, u := range objs {
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return fmt.Errorf("writing %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// GVR is the resource an object of gvk is served as; Render returns only
// these kinds.
func GVR(gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool) {
	r, ok := resources[gvk.Kind]
	return gvk.GroupVersion().WithResource(r), ok
}

var resources = map[string]string{
	"Namespace":             "namespaces",
	"ServiceAccount":        "serviceaccounts",
	"Secret":                "secrets",
	"Service":               "services",
	"PersistentVolumeClaim": "persistentvolumeclaims",
	"ClusterRole":           "clusterroles",
	"ClusterRoleBinding":    "clusterrolebindings",
	"Deployment":            "deployments",
	"DaemonSet":             "daemonsets",
}
