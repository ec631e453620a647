package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

// The deployment files (deploy/) are checked against the binary itself, so
// that they cannot drift from it: every variable they set is a setting of
// the gateway, the configuration they make is one it accepts, their ports
// are the addresses it listens on, their probes are routes it serves, their
// user is the image's, their volumes are where its files are. Kubernetes
// manifests are rendered with kustomize (the Go library pinned in go.mod)
// and decoded strictly into the Kubernetes API types.

const deployDir = "../../deploy"

func isSetting(name string) bool {
	return slices.ContainsFunc(settings, func(s setting) bool { return s.env == name })
}

// settingValue is what the gateway makes of env for a setting: its value,
// or the default when unset or empty.
func settingValue(env map[string]string, name string) string {
	if v := env[name]; v != "" {
		return v
	}
	return settingOf(name).def
}

// fileSettings name files the gateway reads, and whether each is a secret.
var fileSettings = map[string]bool{
	"UPVEST_CLIENT_SECRET_FILE": true, "UPVEST_SIGNING_KEY_FILE": true, "UPVEST_SIGNING_KEY_PASSPHRASE_FILE": true,
	"GATEWAY_TLS_CERT_FILE": true, "GATEWAY_TLS_KEY_FILE": true, "GATEWAY_TLS_CLIENT_CA_FILE": true,
	"GATEWAY_POLICY_FILE": false, "GATEWAY_JWT_JWKS_FILE": false,
}

// addrPorts: each listener's setting and the name of its port.
var addrPorts = map[string]string{"GATEWAY_GRPC_ADDR": "grpc", "GATEWAY_HTTP_ADDR": "http", "GATEWAY_WEBHOOK_ADDR": "webhook", "GATEWAY_ADMIN_ADDR": "admin"}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		t.Fatalf("%q is not host:port", addr)
	}
	return int32(n)
}

// --- the image ---

// dockerfile is what the checks need of deploy/Dockerfile.
type dockerfile struct {
	goVersion   string
	user        string
	env         map[string]string // the final stage's
	volumes     []string
	expose      []int32
	healthcheck string
	build       string // the RUN with go build
	chownCopies []string
	keysStage   string // the local-keys stage's ENTRYPOINT
	cgo         string // CGO_ENABLED, in any stage
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Instructions, continuation lines joined, comments dropped.
	var instrs []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if l, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	d := dockerfile{env: map[string]string{}}
	stage := ""
	for _, in := range instrs {
		op, args, _ := strings.Cut(in, " ")
		switch strings.ToUpper(op) {
		case "ARG":
			if v, ok := strings.CutPrefix(args, "GO_VERSION="); ok {
				d.goVersion = v
			}
		case "FROM":
			stage = args
			d.env = map[string]string{} // the final stage's count
		case "ENV":
			for _, kv := range strings.Fields(args) {
				k, v, _ := strings.Cut(kv, "=")
				d.env[k] = v
				if k == "CGO_ENABLED" {
					d.cgo = v
				}
			}
		case "USER":
			d.user = args
		case "VOLUME":
			d.volumes = append(d.volumes, strings.Fields(args)...)
		case "EXPOSE":
			for _, p := range strings.Fields(args) {
				n, _ := strconv.Atoi(p)
				d.expose = append(d.expose, int32(n))
			}
		case "HEALTHCHECK":
			d.healthcheck = args
		case "RUN":
			if strings.Contains(args, "go build") {
				d.build = args
			}
		case "COPY":
			if strings.Contains(args, "--chown=") {
				d.chownCopies = append(d.chownCopies, args)
			}
		case "ENTRYPOINT":
			if strings.HasSuffix(stage, "AS local-keys") {
				d.keysStage = args
			}
		}
	}
	return d
}

func goModVersion(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("no go line in go.mod")
	}
	return string(m[1])
}

// TestDockerfile: the image is built with go.mod's Go, without cgo, with
// the version stamped; it runs as the numeric user the manifests name,
// with its data volume at GATEWAY_DATA_DIR owned by that user, and checks
// its health with the binary itself (no shell in the image).
func TestDockerfile(t *testing.T) {
	t.Parallel()
	d := readDockerfile(t)
	if v := goModVersion(t); d.goVersion != v {
		t.Errorf("Dockerfile GO_VERSION %q, go.mod says %q", d.goVersion, v)
	}
	if d.user != fmt.Sprintf("%d:%d", imageUID, imageUID) {
		t.Errorf("USER %q, want %d:%d (numeric, for runAsNonRoot)", d.user, imageUID, imageUID)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "./cmd/gateway", "./cmd/upvest-sim"} {
		if !strings.Contains(d.build+" CGO_ENABLED="+d.cgo, want) {
			t.Errorf("the build does not have %q: %s", want, d.build)
		}
	}
	dataDir := d.env["GATEWAY_DATA_DIR"]
	if dataDir == "" || !slices.Equal(d.volumes, []string{dataDir}) {
		t.Errorf("VOLUME %v, want GATEWAY_DATA_DIR %q", d.volumes, dataDir)
	}
	if !slices.ContainsFunc(d.chownCopies, func(c string) bool {
		return strings.Contains(c, fmt.Sprintf("--chown=%d:%d", imageUID, imageUID)) && strings.HasSuffix(c, " "+dataDir)
	}) {
		t.Errorf("the data directory %s is not made the user's: %v", dataDir, d.chownCopies)
	}
	var hc []string
	if cmd, ok := strings.CutPrefix(d.healthcheck[strings.Index(d.healthcheck, "CMD"):], "CMD "); !ok || json.Unmarshal([]byte(cmd), &hc) != nil ||
		!slices.Equal(hc, []string{"/usr/local/bin/gateway", "healthcheck"}) {
		t.Errorf("HEALTHCHECK %q, want the exec form of gateway healthcheck", d.healthcheck)
	}
	for _, env := range []string{"GATEWAY_GRPC_ADDR", "GATEWAY_HTTP_ADDR"} {
		if p := portOf(t, settingValue(d.env, env)); !slices.Contains(d.expose, p) {
			t.Errorf("%s's port %d is not exposed (%v)", env, p, d.expose)
		}
	}
	for k := range d.env {
		if !isSetting(k) && k != "CGO_ENABLED" {
			t.Errorf("ENV %s is no setting of the gateway", k)
		}
	}
	if !strings.Contains(d.keysStage, fmt.Sprintf("chown %d:%d tenant.pem", imageUID, imageUID)) || !strings.Contains(d.keysStage, "chmod 0400 tenant.pem") {
		t.Errorf("the local-keys stage does not make the key the gateway user's alone: %s", d.keysStage)
	}
}

// --- Kubernetes ---

// manifests are rendered resources, strictly decoded.
type manifests struct {
	deployments     map[string]*appsv1.Deployment
	statefulSets    map[string]*appsv1.StatefulSet
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap // by name before kustomize's hash suffix too
	secrets         map[string]*corev1.Secret
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	networkPolicies []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
	rules           []*monitoringv1.PrometheusRule
	serviceAccounts []*corev1.ServiceAccount
}

// kubernetesFS is deploy/kubernetes in memory at /k, with kustomizations
// of the test's own added.
func kubernetesFS(t *testing.T, extra map[string]string) filesys.FileSystem {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	root := filepath.Join(deployDir, "kubernetes")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fsys.WriteFile(path.Join("/k", filepath.ToSlash(rel)), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range extra {
		if err := fsys.WriteFile(path.Join("/k", name), []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

// render builds the kustomization in dir of fsys.
func render(t *testing.T, fsys filesys.FileSystem, dir string) *manifests {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	m := &manifests{deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, r := range resMap.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		gv, kind, name := r.GetApiVersion(), r.GetKind(), r.GetName()
		decode := func(obj any) {
			if err := sigsyaml.UnmarshalStrict(y, obj); err != nil {
				t.Errorf("%s %s %s does not decode strictly: %v", gv, kind, name, err)
			}
		}
		want := map[string]string{
			"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Service": "v1", "ConfigMap": "v1", "Secret": "v1", "ServiceAccount": "v1",
			"PodDisruptionBudget": "policy/v1", "HorizontalPodAutoscaler": "autoscaling/v2", "NetworkPolicy": "networking.k8s.io/v1",
			"ServiceMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
		}[kind]
		if want == "" || gv != want {
			t.Errorf("%s %s %s: want a known kind at its current API version (%q)", gv, kind, name, want)
			continue
		}
		switch kind {
		case "Deployment":
			o := new(appsv1.Deployment)
			decode(o)
			m.deployments[name] = o
		case "StatefulSet":
			o := new(appsv1.StatefulSet)
			decode(o)
			m.statefulSets[name] = o
		case "Service":
			o := new(corev1.Service)
			decode(o)
			m.services[name] = o
		case "ConfigMap":
			o := new(corev1.ConfigMap)
			decode(o)
			m.configMaps[name] = o
		case "Secret":
			o := new(corev1.Secret)
			decode(o)
			m.secrets[name] = o
		case "ServiceAccount":
			o := new(corev1.ServiceAccount)
			decode(o)
			m.serviceAccounts = append(m.serviceAccounts, o)
		case "PodDisruptionBudget":
			o := new(policyv1.PodDisruptionBudget)
			decode(o)
			m.pdbs = append(m.pdbs, o)
		case "HorizontalPodAutoscaler":
			o := new(autoscalingv2.HorizontalPodAutoscaler)
			decode(o)
			m.hpas = append(m.hpas, o)
		case "NetworkPolicy":
			o := new(networkingv1.NetworkPolicy)
			decode(o)
			m.networkPolicies = append(m.networkPolicies, o)
		case "ServiceMonitor":
			o := new(monitoringv1.ServiceMonitor)
			decode(o)
			m.serviceMonitors = append(m.serviceMonitors, o)
		case "PrometheusRule":
			o := new(monitoringv1.PrometheusRule)
			decode(o)
			m.rules = append(m.rules, o)
		}
	}
	return m
}

// gatewayContainer is the gateway's Deployment and container.
func (m *manifests) gatewayContainer(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := m.deployments["upvest-gateway"]
	if d == nil {
		t.Fatal("no Deployment upvest-gateway")
	}
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "gateway" {
			return d, c
		}
	}
	t.Fatal("no container gateway")
	return nil, nil
}

// containerEnv is the container's environment as the gateway sees it:
// the image's, then envFrom's ConfigMaps, then env (values from a secret
// as rendered, else a stand-in).
func (m *manifests) containerEnv(t *testing.T, c *corev1.Container, image map[string]string) map[string]string {
	t.Helper()
	env := maps.Clone(image)
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Fatalf("envFrom %+v: only config maps", ef)
		}
		cm := m.configMaps[ef.ConfigMapRef.Name]
		if cm == nil {
			t.Fatalf("envFrom names the missing ConfigMap %s", ef.ConfigMapRef.Name)
		}
		maps.Copy(env, cm.Data)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			env[e.Name] = "c5a1e1f4-6a8e-4a43-9d0a-1f2e3d4c5b6a" // created by hand: a stand-in
			if s := m.secrets[ref.Name]; s != nil {
				v, ok := s.Data[ref.Key]
				if !ok {
					t.Errorf("env %s: the secret %s has no key %s", e.Name, ref.Name, ref.Key)
				}
				env[e.Name] = string(v)
			}
		default:
			t.Errorf("env %s: a source the checks do not know", e.Name)
		}
	}
	return env
}

// servedPaths are the paths of the probes that a running gateway answers
// with 200 on its admin listener, where the probes go, and on its HTTP
// listener, which serves the same health routes.
func servedPaths(t *testing.T, paths []string) {
	t.Helper()
	g := servertest.Start(t)
	for _, p := range paths {
		for _, base := range []string{g.AdminBaseURL, "http://" + g.Server.HTTPAddr()} {
			resp, err := http.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("probe path %s: the gateway answers %d at %s", p, resp.StatusCode, base)
			}
		}
	}
}

// TestKubernetesManifests renders the base, the local overlay and the
// base with the encrypted-key component, and checks each against the
// gateway.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	img := readDockerfile(t)
	fsys := kubernetesFS(t, map[string]string{
		"test-encrypted-key/kustomization.yaml": "resources: [../base]\ncomponents: [../components/encrypted-signing-key]\n",
	})
	renders := map[string]string{"base": "/k/base", "local": "/k/overlays/local", "encrypted key": "/k/test-encrypted-key"}
	var probePaths []string
	for name, dir := range renders {
		t.Run(name, func(t *testing.T) {
			m := render(t, fsys, dir)
			probePaths = append(probePaths, checkGateway(t, m, img)...)
			checkServices(t, m)
			checkNATS(t, m, img)
			checkWorkloads(t, m)
			checkMonitoring(t, m, name != "local")
			if name == "local" {
				checkLocal(t, m)
			}
			if name == "encrypted key" {
				_, c := m.gatewayContainer(t)
				if env := m.containerEnv(t, c, img.env); env["UPVEST_SIGNING_KEY_PASSPHRASE_FILE"] == "" {
					t.Error("the component does not set UPVEST_SIGNING_KEY_PASSPHRASE_FILE")
				}
			}
		})
	}
	slices.Sort(probePaths)
	servedPaths(t, slices.Compact(probePaths))
}

// checkGateway checks the gateway's Deployment; it returns its probes'
// paths.
func checkGateway(t *testing.T, m *manifests, img dockerfile) []string {
	t.Helper()
	d, c := m.gatewayContainer(t)
	pod := d.Spec.Template.Spec
	env := m.containerEnv(t, c, img.env)

	// Every variable is a setting, and together they are a configuration
	// the gateway accepts.
	for k := range env {
		if !isSetting(k) {
			t.Errorf("%s is no setting of the gateway", k)
		}
	}
	cfg, err := ParseConfig(env, nil)
	if err != nil {
		t.Fatalf("the gateway refuses this configuration: %v", err)
	}

	// Ports: each listener's address has its named port, and no port is
	// left without a listener.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for envName, portName := range addrPorts {
		p, ok := ports[portName]
		if !ok {
			t.Errorf("no container port %q for %s", portName, envName)
			continue
		}
		if addr := settingValue(env, envName); portOf(t, addr) != p {
			t.Errorf("%s is %s, but the port %q is %d", envName, addr, portName, p)
		}
		if !slices.Contains(img.expose, p) {
			t.Errorf("port %s %d is not exposed by the image", portName, p)
		}
	}
	if len(ports) != len(addrPorts) {
		t.Errorf("container ports %v: one per listener", ports)
	}

	// Probes: on the admin listener, at routes the gateway serves.
	var paths []string
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s probe (HTTP)", name)
			continue
		}
		if p.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe on port %s, want admin", name, p.HTTPGet.Port.String())
		}
		paths = append(paths, p.HTTPGet.Path)
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %s, want /readyz (it follows the event log)", c.ReadinessProbe.HTTPGet.Path)
	}

	// The image's user, numeric, never root, nothing to escalate to.
	psc, csc := pod.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || csc == nil:
		t.Fatal("no security contexts")
	case psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot, psc.RunAsUser == nil || *psc.RunAsUser != imageUID:
		t.Errorf("pod runs as %s (non-root %s), want %d", show(psc.RunAsUser), show(psc.RunAsNonRoot), imageUID)
	case psc.FSGroup == nil || *psc.FSGroup != imageUID || psc.RunAsGroup == nil || *psc.RunAsGroup != imageUID:
		t.Errorf("pod group %s, fsGroup %s: want %d, so mounted secrets are the gateway's group's", show(psc.RunAsGroup), show(psc.FSGroup), imageUID)
	case csc.RunAsUser != nil && *csc.RunAsUser != imageUID:
		t.Errorf("container runs as %d", *csc.RunAsUser)
	case csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
		t.Error("the root file system is writable")
	case csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v, want all dropped", csc.Capabilities)
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("no RuntimeDefault seccomp profile")
	}
	if u := strings.Split(img.user, ":")[0]; u != strconv.Itoa(imageUID) {
		t.Errorf("the image's user %s is not the manifests' %d", u, imageUID)
	}

	// Volumes: the data directory is writable; every file setting names a
	// file of a mounted secret (or config map), keys read-only to the user.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(dir string) (corev1.VolumeMount, corev1.Volume, bool) {
		for _, vm := range c.VolumeMounts {
			if path.Clean(vm.MountPath) == path.Clean(dir) {
				return vm, volumes[vm.Name], true
			}
		}
		return corev1.VolumeMount{}, corev1.Volume{}, false
	}
	if vm, v, ok := mountOf(cfg.DataDir); !ok || vm.ReadOnly || v.EmptyDir == nil && v.PersistentVolumeClaim == nil {
		t.Errorf("GATEWAY_DATA_DIR %s is not a writable volume", cfg.DataDir)
	}
	for envName, secret := range fileSettings {
		file := env[envName]
		if file == "" {
			continue
		}
		vm, v, ok := mountOf(path.Dir(file))
		switch {
		case !ok:
			t.Errorf("%s %s: no volume mounted at %s", envName, file, path.Dir(file))
			continue
		case !vm.ReadOnly:
			t.Errorf("%s: the volume %s is mounted writable", envName, vm.Name)
		case secret && v.Secret == nil:
			t.Errorf("%s: the volume %s is not a secret", envName, vm.Name)
			continue
		case !secret && v.Secret == nil && v.ConfigMap == nil:
			t.Errorf("%s: the volume %s is neither a secret nor a config map", envName, vm.Name)
			continue
		}
		var items []corev1.KeyToPath
		var keys map[string]string
		if v.Secret != nil {
			items = v.Secret.Items
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
				t.Errorf("%s: the secret volume %s has mode %s, want 0400 (256)", envName, vm.Name, show(v.Secret.DefaultMode))
			}
			if s := m.secrets[v.Secret.SecretName]; s != nil {
				keys = map[string]string{}
				for k, b := range s.Data {
					keys[k] = string(b)
				}
			}
		} else {
			items = v.ConfigMap.Items
			if cm := m.configMaps[v.ConfigMap.Name]; cm != nil {
				keys = cm.Data
			} else {
				t.Errorf("%s: the config map %s is not in the manifests", envName, v.ConfigMap.Name)
			}
		}
		base := path.Base(file)
		switch {
		case len(items) > 0 && !slices.ContainsFunc(items, func(i corev1.KeyToPath) bool { return i.Path == base }):
			t.Errorf("%s: the volume %s holds %v, not %s", envName, vm.Name, items, base)
		case len(items) == 0 && keys != nil && keys[base] == "":
			t.Errorf("%s: %s is no key of the volume %s", envName, base, vm.Name)
		}
		if envName == "GATEWAY_POLICY_FILE" && keys != nil {
			if _, err := auth.ParsePolicy([]byte(keys[base]), policyMethods()); err != nil {
				t.Errorf("the policy %s does not load: %v", base, err)
			}
		}
	}

	// Shutdown: the grace period covers the delay and the drain, with room
	// for closing NATS.
	delay, err1 := time.ParseDuration(settingValue(env, "GATEWAY_SHUTDOWN_DELAY"))
	drain, err2 := time.ParseDuration(settingValue(env, "GATEWAY_DRAIN_TIMEOUT"))
	if err1 != nil || err2 != nil {
		t.Fatalf("shutdown delay or drain timeout: %v %v", err1, err2)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < delay+drain+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %s is not above the shutdown delay %v + drain %v + 5s", show(g), delay, drain)
	}

	// Replicas: two at least, the autoscaler's floor too; one disruption
	// at a time.
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %s, want at least 2", show(d.Spec.Replicas))
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	var hpaOK, pdbOK bool
	for _, h := range m.hpas {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
			hpaOK = h.Spec.MinReplicas != nil && *h.Spec.MinReplicas >= 2 && h.Spec.MaxReplicas >= *h.Spec.MinReplicas
		}
	}
	for _, p := range m.pdbs {
		if sel, err := metaSelector(p.Spec.Selector); err == nil && sel.Matches(podLabels) {
			pdbOK = p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.IntValue() == 1
		}
	}
	if !hpaOK || !pdbOK {
		t.Errorf("autoscaler (min 2) %t, disruption budget (one at a time) %t", hpaOK, pdbOK)
	}

	// The network: only the webhook port is open to everyone.
	webhookPort := portOf(t, settingValue(env, "GATEWAY_WEBHOOK_ADDR"))
	var open []int32
	for _, np := range m.networkPolicies {
		if sel, err := metaSelector(&np.Spec.PodSelector); err != nil || !sel.Matches(podLabels) {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				n := resolvePort(t, p.Port, ports)
				if len(rule.From) == 0 || slices.ContainsFunc(rule.From, func(f networkingv1.NetworkPolicyPeer) bool {
					return f.IPBlock != nil && (f.IPBlock.CIDR == "0.0.0.0/0" || f.IPBlock.CIDR == "::/0")
				}) {
					open = append(open, n)
				}
			}
		}
	}
	if !slices.Equal(open, []int32{webhookPort}) {
		t.Errorf("ports open to everyone: %v, want the webhook port %d alone", open, webhookPort)
	}
	if !slices.ContainsFunc(m.networkPolicies, func(np *networkingv1.NetworkPolicy) bool {
		sel, err := metaSelector(&np.Spec.PodSelector)
		return err == nil && sel.Matches(podLabels) && slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
	}) {
		t.Error("no NetworkPolicy holds the gateway's ingress")
	}
	return paths
}

// show is *p, or "unset".
func show[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func resolvePort(t *testing.T, p *intstr.IntOrString, named map[string]int32) int32 {
	t.Helper()
	if p == nil {
		t.Error("a NetworkPolicy rule opens every port")
		return 0
	}
	if p.Type == intstr.Int {
		return p.IntVal
	}
	n, ok := named[p.StrVal]
	if !ok {
		t.Errorf("port %q is no container port", p.StrVal)
	}
	return n
}

// checkServices: every Service selects pods, and its target ports are
// theirs; gRPC has a headless Service for client-side balancing.
func checkServices(t *testing.T, m *manifests) {
	t.Helper()
	type pods struct {
		labels labels.Set
		ports  map[string]int32
	}
	var all []pods
	for _, tmpl := range m.podTemplates() {
		p := pods{labels: tmpl.Labels, ports: map[string]int32{}}
		for _, c := range tmpl.Spec.Containers {
			for _, cp := range c.Ports {
				p.ports[cp.Name] = cp.ContainerPort
			}
		}
		all = append(all, p)
	}
	headless := false
	for name, s := range m.services {
		sel := labels.SelectorFromSet(s.Spec.Selector)
		i := slices.IndexFunc(all, func(p pods) bool { return len(s.Spec.Selector) > 0 && sel.Matches(p.labels) })
		if i < 0 {
			t.Errorf("Service %s selects no pods", name)
			continue
		}
		for _, sp := range s.Spec.Ports {
			if _, ok := all[i].ports[sp.TargetPort.String()]; sp.TargetPort.Type != intstr.String || !ok {
				t.Errorf("Service %s port %s targets %s, not a named port of its pods", name, sp.Name, sp.TargetPort.String())
			}
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.TargetPort.String() == "grpc" }) {
			headless = true
		}
	}
	if !headless {
		t.Error("no headless Service for gRPC client-side load balancing")
	}
}

func (m *manifests) podTemplates() []corev1.PodTemplateSpec {
	var out []corev1.PodTemplateSpec
	for _, d := range m.deployments {
		out = append(out, d.Spec.Template)
	}
	for _, s := range m.statefulSets {
		out = append(out, s.Spec.Template)
	}
	return out
}

// checkWorkloads: every container has requests, a memory limit and probes,
// and runs without privileges.
func checkWorkloads(t *testing.T, m *manifests) {
	t.Helper()
	for _, tmpl := range m.podTemplates() {
		if tmpl.Spec.SecurityContext == nil || tmpl.Spec.SecurityContext.RunAsNonRoot == nil || !*tmpl.Spec.SecurityContext.RunAsNonRoot {
			t.Errorf("pods %v may run as root", tmpl.Labels)
		}
		if tmpl.Spec.AutomountServiceAccountToken == nil || *tmpl.Spec.AutomountServiceAccountToken {
			t.Errorf("pods %v get a Kubernetes API token they do not need", tmpl.Labels)
		}
		for _, c := range tmpl.Spec.Containers {
			r := c.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
				t.Errorf("container %s: resources %+v, want CPU and memory requests and a memory limit", c.Name, r)
			}
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("container %s: no readiness or liveness probe", c.Name)
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("container %s: security context %+v", c.Name, sc)
			}
			for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				if p != nil && p.HTTPGet != nil && !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.HTTPGet.Port.String() }) {
					t.Errorf("container %s probes port %s, which it does not have", c.Name, p.HTTPGet.Port.String())
				}
			}
		}
	}
}

// checkNATS: three JetStream servers, with probes, storage and routes to
// each other by name, and the gateway's GATEWAY_NATS_URL naming them.
func checkNATS(t *testing.T, m *manifests, img dockerfile) {
	t.Helper()
	s := m.statefulSets["nats"]
	if s == nil {
		t.Fatal("no StatefulSet nats")
	}
	if s.Spec.Replicas == nil || *s.Spec.Replicas != 3 || len(s.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("nats: replicas %s, %d volume claims; want 3 and 1", show(s.Spec.Replicas), len(s.Spec.VolumeClaimTemplates))
	}
	c := s.Spec.Template.Spec.Containers[0]
	if c.StartupProbe == nil {
		t.Error("nats: no startup probe")
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	svc := m.services[s.Spec.ServiceName]
	if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("nats: the governing Service %q is missing or not headless", s.Spec.ServiceName)
	}
	var hosts, routes []string
	for i := range *s.Spec.Replicas {
		host := fmt.Sprintf("%s-%d.%s", s.Name, i, s.Spec.ServiceName)
		hosts = append(hosts, fmt.Sprintf("nats://%s:%d", host, ports["client"]))
		routes = append(routes, fmt.Sprintf("nats://%s:%d", host, ports["cluster"]))
	}
	conf := ""
	for _, cm := range m.configMaps {
		if v, ok := cm.Data["nats.conf"]; ok {
			conf = v
		}
	}
	for _, r := range routes {
		if !strings.Contains(conf, r) {
			t.Errorf("nats.conf does not route to %s", r)
		}
	}
	for _, want := range []string{"server_name: $POD_NAME", "jetstream", "store_dir: " + s.Spec.Template.Spec.Containers[0].VolumeMounts[1].MountPath} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	_, gc := m.gatewayContainer(t)
	env := m.containerEnv(t, gc, img.env)
	var got []string
	for u := range strings.SplitSeq(env["GATEWAY_NATS_URL"], ",") {
		got = append(got, strings.TrimSpace(u))
	}
	if !slices.Equal(got, hosts) {
		t.Errorf("GATEWAY_NATS_URL %v, want the servers %v", got, hosts)
	}
}

// checkMonitoring: Prometheus scrapes the admin port, and the alert rules
// and the dashboard use the gateway's metrics by their names.
func checkMonitoring(t *testing.T, m *manifests, want bool) {
	t.Helper()
	if !want {
		if len(m.serviceMonitors)+len(m.rules) > 0 {
			t.Error("Prometheus Operator resources where there is none")
		}
		return
	}
	if len(m.serviceMonitors) != 1 || len(m.rules) != 1 {
		t.Fatalf("%d ServiceMonitors, %d PrometheusRules; want one each", len(m.serviceMonitors), len(m.rules))
	}
	sm := m.serviceMonitors[0]
	sel, err := metaSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range m.services {
		if !sel.Matches(labels.Set(s.Labels)) {
			continue
		}
		for _, ep := range sm.Spec.Endpoints {
			found = found || slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool {
				return p.Name == ep.Port && p.TargetPort.String() == "admin"
			}) && ep.Path == "/metrics"
		}
	}
	if !found {
		t.Error("the ServiceMonitor does not scrape /metrics on the admin port")
	}
	var exprs []string
	for _, g := range m.rules[0].Spec.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr.String())
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: want an alert with a severity and a summary", r.Alert)
			}
		}
	}
	checkMetricNames(t, "alert rules", exprs)
	for _, cm := range m.configMaps {
		if raw, ok := cm.Data["upvest-gateway-dashboard.json"]; ok {
			var d struct {
				Panels []struct {
					Targets []struct {
						Expr string `json:"expr"`
					} `json:"targets"`
				} `json:"panels"`
			}
			if err := json.Unmarshal([]byte(raw), &d); err != nil {
				t.Fatalf("dashboard: %v", err)
			}
			var dexprs []string
			for _, p := range d.Panels {
				for _, tg := range p.Targets {
					dexprs = append(dexprs, tg.Expr)
				}
			}
			checkMetricNames(t, "dashboard", dexprs)
		}
	}
}

// metricNames are the gateway's metrics (the contract between its code,
// the dashboard and the alert rules), and what Prometheus adds.
var metricNames = []string{
	"grpc_server_started_total", "grpc_server_handled_total", "grpc_server_handling_seconds", "grpc_server_msg_received_total", "grpc_server_msg_sent_total",
	"upvest_gateway_upstream_requests_total", "upvest_gateway_upstream_request_duration_seconds", "upvest_gateway_upstream_retries_total",
	"upvest_gateway_upstream_outcome_unknown_total", "upvest_gateway_upstream_token_requests_total", "upvest_gateway_upstream_token_refreshes_total",
	"upvest_gateway_idempotency_requests_total", "upvest_gateway_idempotency_conflicts_total", "upvest_gateway_idempotency_unavailable_total",
	"upvest_gateway_webhook_deliveries_total", "upvest_gateway_webhook_rejections_total", "upvest_gateway_webhook_events_total",
	"upvest_gateway_event_log_append_duration_seconds", "upvest_gateway_event_log_append_errors_total",
	"upvest_gateway_streams_active", "upvest_gateway_stream_event_lag_seconds", "upvest_gateway_streams_ended_total",
	"upvest_gateway_build_info", "up",
}

var histograms = []string{"grpc_server_handling_seconds", "upvest_gateway_upstream_request_duration_seconds", "upvest_gateway_event_log_append_duration_seconds", "upvest_gateway_stream_event_lag_seconds"}

// checkMetricNames finds every series name in exprs (an identifier before
// a selector or a range) and checks it is one of the gateway's.
func checkMetricNames(t *testing.T, what string, exprs []string) {
	t.Helper()
	series := regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]`)
	n := 0
	for _, e := range exprs {
		for _, mt := range series.FindAllStringSubmatch(e, -1) {
			name := mt[1]
			if slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, name) {
				continue
			}
			n++
			if h, ok := strings.CutSuffix(name, "_bucket"); ok && slices.Contains(histograms, h) {
				continue
			}
			if !slices.Contains(metricNames, name) {
				t.Errorf("%s: %s is not a metric of the gateway (in %s)", what, name, e)
			}
		}
	}
	if n == 0 {
		t.Errorf("%s: no metric found", what)
	}
}

// checkLocal: the local overlay runs the simulator as the gateway's
// Upvest, with credentials that match.
func checkLocal(t *testing.T, m *manifests) {
	t.Helper()
	_, c := m.gatewayContainer(t)
	env := m.containerEnv(t, c, readDockerfile(t).env)
	sim := m.deployments["upvest-sim"]
	if sim == nil {
		t.Fatal("no simulator")
	}
	args := map[string]string{}
	for _, a := range sim.Spec.Template.Spec.Containers[0].Args {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		args[k] = v
	}
	var secret string
	for _, s := range m.secrets {
		if v, ok := s.Data["client-secret"]; ok {
			secret = string(v)
		}
	}
	u, err := url.Parse(env["UPVEST_BASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	svc := m.services[u.Hostname()]
	switch {
	case args["client-id"] != env["UPVEST_CLIENT_ID"], args["client-secret"] != secret, args["tenant-key-id"] != env["UPVEST_SIGNING_KEY_ID"]:
		t.Errorf("the simulator's tenant %v is not the gateway's (%s, key %s)", args, env["UPVEST_CLIENT_ID"], env["UPVEST_SIGNING_KEY_ID"])
	case svc == nil || strconv.Itoa(int(svc.Spec.Ports[0].Port)) != u.Port() || !strings.HasSuffix(args["addr"], ":"+u.Port()):
		t.Errorf("UPVEST_BASE_URL %s is not the simulator's Service", u)
	}
	hook, err := url.Parse(env["GATEWAY_WEBHOOK_PUBLIC_URL"])
	if err != nil {
		t.Fatal(err)
	}
	if ws := m.services[hook.Hostname()]; ws == nil || ws.Spec.Ports[0].TargetPort.String() != "webhook" || strconv.Itoa(int(ws.Spec.Ports[0].Port)) != hook.Port() {
		t.Errorf("GATEWAY_WEBHOOK_PUBLIC_URL %s is not the webhook Service", hook)
	}
}

// metaSelector is a label selector as a Selector.
func metaSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(s)
}

// --- compose ---

// composeFile is the part of the compose specification deploy/compose.yaml
// uses; any other field (a typo) fails the strict decoding.
type composeFile struct {
	Name       string                    `yaml:"name"`
	Services   map[string]composeService `yaml:"services"`
	Volumes    map[string]any            `yaml:"volumes"`
	Extensions map[string]any            `yaml:",inline"` // x-*: anchors
}

type composeService struct {
	Image string `yaml:"image"`
	Build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
		Target     string `yaml:"target"`
	} `yaml:"build"`
	Restart   string `yaml:"restart"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

// flags reads --name=value and --name value arguments.
func flags(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a, ok := strings.CutPrefix(args[i], "--")
		if !ok {
			continue
		}
		k, v, hasValue := strings.Cut(a, "=")
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			v = args[i+1]
			i++
		}
		out[k] = v
	}
	return out
}

// mountAt is the volume of svc mounted at dir ("" if none), and whether
// read-only.
func (svc composeService) mountAt(dir string) (string, bool) {
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && path.Clean(parts[1]) == path.Clean(dir) {
			return parts[0], len(parts) == 3 && parts[2] == "ro"
		}
	}
	return "", false
}

// TestCompose: deploy/compose.yaml runs two gateways on a three-node NATS
// cluster whose nodes have their own names, against the simulator, with a
// signing key the gateway's user alone may read; every service is checked
// for health and restarted; the gateways' configuration is one the gateway
// accepts and matches the simulator, the NATS nodes and the image.
func TestCompose(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for k := range cf.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("compose.yaml: unknown top-level field %q", k)
		}
	}
	img := readDockerfile(t)

	var natsNodes, gateways []string
	for name, svc := range cf.Services {
		switch {
		case strings.HasPrefix(svc.Image, "nats:"):
			natsNodes = append(natsNodes, name)
		case svc.Image == "upvest-gateway:local" && svc.Entrypoint == nil:
			gateways = append(gateways, name)
		}
		if strings.Contains(strings.Join(append(svc.Entrypoint, svc.Command...), " "), "$") {
			t.Errorf("%s: a $ in its command is not expanded (no shell runs it)", name)
		}
		if name != "keys" && (svc.Restart == "" || svc.Restart == "no" || svc.Healthcheck == nil || len(svc.Healthcheck.Test) == 0) {
			t.Errorf("%s: restart %q, healthcheck %v; want both", name, svc.Restart, svc.Healthcheck)
		}
		if svc.Build.Context != "" && (svc.Build.Context != ".." || svc.Build.Dockerfile != "deploy/Dockerfile") {
			t.Errorf("%s: builds %+v, want deploy/Dockerfile from the repository root", name, svc.Build)
		}
		for dep := range svc.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("%s depends on the unknown service %s", name, dep)
			}
		}
		for _, v := range svc.Volumes {
			if src, _, _ := strings.Cut(v, ":"); !strings.HasPrefix(src, ".") && cf.Volumes != nil {
				if _, ok := cf.Volumes[src]; !ok {
					t.Errorf("%s mounts the undeclared volume %s", name, src)
				}
			}
		}
	}
	slices.Sort(natsNodes)
	slices.Sort(gateways)
	if len(natsNodes) != 3 || len(gateways) < 2 {
		t.Fatalf("NATS nodes %v, gateways %v: want 3 and at least 2", natsNodes, gateways)
	}

	// The NATS nodes: their own names, JetStream on a volume, routes to
	// all three.
	var routes []string
	for _, n := range natsNodes {
		routes = append(routes, "nats://"+n+":6222")
	}
	for _, n := range natsNodes {
		svc := cf.Services[n]
		f := flags(svc.Command)
		if f["name"] != n {
			t.Errorf("%s: server name %q, want %q", n, f["name"], n)
		}
		if _, js := f["jetstream"]; !js || f["cluster_name"] == "" {
			t.Errorf("%s: not a JetStream cluster node: %v", n, svc.Command)
		}
		if got := strings.Split(f["routes"], ","); !slices.Equal(got, routes) {
			t.Errorf("%s: routes %v, want %v", n, got, routes)
		}
		if vol, ro := svc.mountAt(f["store_dir"]); vol == "" || ro {
			t.Errorf("%s: store_dir %q is not on a writable volume", n, f["store_dir"])
		}
	}

	// The simulator and its tenant.
	sim := cf.Services["upvest-sim"]
	simArgs := flags(sim.Command)
	keys := cf.Services["keys"]
	if keys.Build.Target != "local-keys" || keys.Restart != "no" {
		t.Errorf("keys: builds %q, restart %q; want the local-keys stage, once", keys.Build.Target, keys.Restart)
	}
	keysVolume, _ := keys.mountAt("/keys")
	for _, g := range gateways {
		svc := cf.Services[g]
		env := maps.Clone(img.env)
		maps.Copy(env, svc.Environment)
		for k := range svc.Environment {
			if !isSetting(k) {
				t.Errorf("%s: %s is no setting of the gateway", g, k)
			}
		}
		cfg, err := ParseConfig(env, nil)
		if err != nil {
			t.Errorf("%s: the gateway refuses this configuration: %v", g, err)
			continue
		}
		for _, dep := range append([]string{"keys", "upvest-sim"}, natsNodes...) {
			if c := svc.DependsOn[dep].Condition; c != "service_healthy" && c != "service_completed_successfully" {
				t.Errorf("%s: starts before %s is ready (%q)", g, dep, c)
			}
		}
		// NATS: the three nodes, replicated three times.
		var hosts []string
		for u := range strings.SplitSeq(cfg.NATSURL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Port() != "4222" {
				t.Errorf("%s: GATEWAY_NATS_URL entry %q", g, u)
				continue
			}
			hosts = append(hosts, pu.Hostname())
		}
		if slices.Sort(hosts); !slices.Equal(hosts, natsNodes) || cfg.NATSReplicas != "3" {
			t.Errorf("%s: NATS %v (replicas %s), want %v (3)", g, hosts, cfg.NATSReplicas, natsNodes)
		}
		// Upvest is the simulator, with the same tenant.
		base, _ := url.Parse(cfg.BaseURL)
		if base.Hostname() != "upvest-sim" || !strings.HasSuffix(simArgs["addr"], ":"+base.Port()) {
			t.Errorf("%s: UPVEST_BASE_URL %s is not the simulator at %s", g, cfg.BaseURL, simArgs["addr"])
		}
		if simArgs["client-id"] != cfg.ClientID || simArgs["client-secret"] != cfg.ClientSecret || simArgs["tenant-key-id"] != cfg.SigningKeyID {
			t.Errorf("%s: the simulator's tenant %v is not the gateway's", g, simArgs)
		}
		// The key: from the keys volume, made the gateway user's alone.
		if vol, ro := svc.mountAt(path.Dir(cfg.SigningKeyFile)); vol != keysVolume || !ro || path.Base(cfg.SigningKeyFile) != "tenant.pem" {
			t.Errorf("%s: UPVEST_SIGNING_KEY_FILE %s is not the keys volume's tenant.pem, read-only (%s)", g, cfg.SigningKeyFile, vol)
		}
		if vol, ro := sim.mountAt(path.Dir(simArgs["tenant-public-key"])); vol != keysVolume || !ro {
			t.Errorf("the simulator's key %s is not from the keys volume", simArgs["tenant-public-key"])
		}
		// The data directory is a volume.
		if vol, ro := svc.mountAt(cfg.DataDir); vol == "" || ro {
			t.Errorf("%s: GATEWAY_DATA_DIR %s is not a writable volume", g, cfg.DataDir)
		}
		// Webhooks: registered for a gateway's webhook listener.
		hook, _ := url.Parse(cfg.WebhookPublicURL)
		if hs, ok := cf.Services[hook.Hostname()]; !ok || !slices.Contains(gateways, hook.Hostname()) || portOf(t, settingValue(hs.Environment, "GATEWAY_WEBHOOK_ADDR")) != portOf(t, hook.Host) {
			t.Errorf("%s: GATEWAY_WEBHOOK_PUBLIC_URL %s is not a gateway's webhook listener", g, hook)
		}
		// Published ports are the listeners'; the health check asks one.
		for _, p := range svc.Ports {
			parts := strings.Split(p, ":")
			cp, _ := strconv.Atoi(parts[len(parts)-1])
			if int32(cp) != portOf(t, cfg.GRPCAddr) && int32(cp) != portOf(t, cfg.HTTPAddr) {
				t.Errorf("%s publishes %s, which is neither the gRPC nor the HTTP listener", g, p)
			}
			if parts[0] != "127.0.0.1" {
				t.Errorf("%s publishes %s beyond loopback: nobody is authenticated here", g, p)
			}
		}
		hc := flags(svc.Healthcheck.Test)
		if svc.Healthcheck.Test[1] != "/usr/local/bin/gateway" || svc.Healthcheck.Test[2] != "healthcheck" || portOf(t, hc["addr"]) != portOf(t, cfg.HTTPAddr) {
			t.Errorf("%s: health check %v, want gateway healthcheck on the HTTP listener", g, svc.Healthcheck.Test)
		}
		delay, _ := time.ParseDuration(settingValue(env, "GATEWAY_SHUTDOWN_DELAY"))
		drain, _ := time.ParseDuration(settingValue(env, "GATEWAY_DRAIN_TIMEOUT"))
		if grace, err := time.ParseDuration(svc.StopGracePeriod); err != nil || grace < delay+drain+5*time.Second {
			t.Errorf("%s: stop_grace_period %q is not above the shutdown delay %v + drain %v + 5s", g, svc.StopGracePeriod, delay, drain)
		}
	}
}
