// Package deploy_test checks the deploy files against the code: the Helm
// chart lints and renders objects that decode strictly into their
// Kubernetes types, the Compose file runs the commands the binary has, and
// every variable either sets is one the configuration reads and validates.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/containerimage"
)

const chart = "helm/regscribe"

// helmBinary is the Helm CLI pinned in go.mod, as `go tool helm` runs it:
// `go tool -n` builds it once into the build cache and names it.
var helmBinary = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "tool", "-n", "helm").Output()
	return strings.TrimSpace(string(out)), err
})

// helm runs `go tool helm` with its configuration and cache in the test's
// own directories.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := helmBinary()
	require.NoError(t, err, "go tool -n helm")
	cmd := exec.Command(bin, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %v: %w\n%s", args, err, stderr.Bytes())
	}
	return stdout.String(), nil
}

// valueFiles are the values the chart is rendered with: its defaults, every
// option on, and secrets kept outside the chart with web pods without a volume.
var valueFiles = map[string][]string{
	"defaults":        nil,
	"all-on":          {"--values", chart + "/ci/all-on-values.yaml"},
	"existing-secret": {"--values", chart + "/ci/existing-secret-values.yaml"},
}

func TestChartLints(t *testing.T) {
	for name, values := range valueFiles {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", chart}, values...)...)
			require.NoError(t, err, out)
			require.Contains(t, out, "0 chart(s) failed")
		})
	}
}

// rendered is what one `helm template` made, decoded.
type rendered struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	secrets     []corev1.Secret
	claims      []corev1.PersistentVolumeClaim
	budgets     []policyv1.PodDisruptionBudget
	policies    []networkingv1.NetworkPolicy
	monitors    []serviceMonitor
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) the chart renders: a CRD, so not in k8s.io/api.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

var document = regexp.MustCompile(`(?m)^---\s*$`)

// render runs `helm template` and decodes every object strictly into its
// type by apiVersion and kind: an unknown or misspelled field fails.
func render(t *testing.T, args ...string) rendered {
	t.Helper()
	out, err := helm(t, append([]string{"template", "regscribe", chart, "--namespace", "photos"}, args...)...)
	require.NoError(t, err)
	var r rendered
	for _, doc := range document.Split(out, -1) {
		js, err := sigsyaml.YAMLToJSON([]byte(doc))
		require.NoError(t, err, doc)
		if string(js) == "null" {
			continue
		}
		var meta metav1.TypeMeta
		require.NoError(t, json.Unmarshal(js, &meta))
		strict := func(v any) {
			d := json.NewDecoder(bytes.NewReader(js))
			d.DisallowUnknownFields()
			require.NoError(t, d.Decode(v), "%s %s:\n%s", meta.APIVersion, meta.Kind, doc)
		}
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			strict(grow(&r.deployments))
		case "v1 Service":
			strict(grow(&r.services))
		case "v1 Secret":
			strict(grow(&r.secrets))
		case "v1 PersistentVolumeClaim":
			strict(grow(&r.claims))
		case "policy/v1 PodDisruptionBudget":
			strict(grow(&r.budgets))
		case "networking.k8s.io/v1 NetworkPolicy":
			strict(grow(&r.policies))
		case "monitoring.coreos.com/v1 ServiceMonitor":
			strict(grow(&r.monitors))
		default:
			t.Fatalf("the chart renders %s %s, which this test does not know:\n%s", meta.APIVersion, meta.Kind, doc)
		}
	}
	return r
}

// grow appends a zero element to s and returns it, to decode into.
func grow[T any](s *[]T) *T {
	*s = append(*s, *new(T))
	return &(*s)[len(*s)-1]
}

func TestChartRendersValidObjects(t *testing.T) {
	for name, values := range valueFiles {
		t.Run(name, func(t *testing.T) {
			r := render(t, values...)
			var components []string
			for _, d := range r.deployments {
				components = append(components, d.Spec.Template.Labels["app.kubernetes.io/component"])
				checkDeployment(t, d, r)
			}
			require.ElementsMatch(t, []string{"notifier", "worker", "web"}, components, "notifier, workers and web, each its own Deployment")
			for _, s := range r.services {
				require.NotNil(t, podsOf(t, r, s.Spec.Selector), "Service %s selects a Deployment's pods", s.Name)
				for _, p := range s.Spec.Ports {
					require.True(t, hasPort(podsOf(t, r, s.Spec.Selector), p.TargetPort.StrVal), "Service %s targets port %q its pods have", s.Name, p.TargetPort.StrVal)
				}
			}
			for _, b := range r.budgets {
				require.NotNil(t, podsOf(t, r, b.Spec.Selector.MatchLabels), "PodDisruptionBudget %s selects a Deployment's pods", b.Name)
			}
			for _, p := range r.policies {
				pods := podsOf(t, r, p.Spec.PodSelector.MatchLabels)
				require.NotNil(t, pods, "NetworkPolicy %s selects a Deployment's pods", p.Name)
				for _, rule := range p.Spec.Ingress {
					for _, port := range rule.Ports {
						require.True(t, slices.ContainsFunc(pods.Spec.Containers[0].Ports, func(c corev1.ContainerPort) bool { return c.ContainerPort == port.Port.IntVal }),
							"NetworkPolicy %s admits port %d its pods listen on", p.Name, port.Port.IntVal)
					}
				}
			}
			for _, m := range r.monitors {
				sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
				require.NoError(t, err)
				var scraped []string
				for _, s := range r.services {
					for _, e := range m.Spec.Endpoints {
						if sel.Matches(labels.Set(s.Labels)) && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
							require.Equal(t, "/metrics", e.Path)
							scraped = append(scraped, s.Labels["app.kubernetes.io/component"])
						}
					}
				}
				require.ElementsMatch(t, []string{"notifier", "worker", "web"}, scraped, "the ServiceMonitor scrapes every component once")
			}
		})
	}
}

// checkDeployment: the selector picks the pod template, the pod runs the
// image as its non-root user with a read-only root, the command is one the
// binary has, probes are on /healthz and /readyz of a declared port, it has
// resources, every secret and volume it names exists, and its environment is
// one the configuration reads and accepts.
func checkDeployment(t *testing.T, d appsv1.Deployment, r rendered) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	require.NoError(t, err)
	require.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)), "%s selects its own pods", d.Name)
	pod := d.Spec.Template.Spec
	require.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.Equal(t, int64(containerimage.User), *pod.SecurityContext.RunAsUser, "the image's user")
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.Contains(t, []string{"notifier", "worker", "web"}, c.Args[0])
	require.Empty(t, c.Command, "the image's entrypoint is the binary")
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.NotEmpty(t, c.Resources.Requests, "%s has resource requests", d.Name)
	require.NotEmpty(t, c.Resources.Limits, "%s has resource limits", d.Name)
	for path, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		require.NotNil(t, probe, "%s probes %s", d.Name, path)
		require.Equal(t, path, probe.HTTPGet.Path)
		require.True(t, hasPort(&d.Spec.Template, probe.HTTPGet.Port.StrVal), "%s probes a port it declares", d.Name)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
		if v.PersistentVolumeClaim != nil {
			require.True(t, slices.ContainsFunc(r.claims, func(c corev1.PersistentVolumeClaim) bool { return c.Name == v.PersistentVolumeClaim.ClaimName }),
				"%s mounts claim %s the chart makes", d.Name, v.PersistentVolumeClaim.ClaimName)
		}
		if v.Secret != nil {
			requireSecret(t, r, v.Secret.SecretName, v.Secret.Optional)
		}
	}
	for _, m := range c.VolumeMounts {
		require.True(t, volumes[m.Name], "%s mounts volume %s it has", d.Name, m.Name)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		_, dup := env[e.Name]
		require.False(t, dup, "%s sets %s twice", d.Name, e.Name)
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			ref := e.ValueFrom.SecretKeyRef
			requireSecret(t, r, ref.Name, ref.Optional)
			env[e.Name] = "from-a-secret"
		}
	}
	checkEnvironment(t, d.Name, env)
	if dir := env["REGSCRIBE_DATA_DIR"]; dir != "" {
		require.True(t, slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir }),
			"%s keeps its data on a volume", d.Name)
	}
}

// requireSecret: a Secret the chart makes, or one it is told exists.
func requireSecret(t *testing.T, r rendered, name string, optional *bool) {
	if len(r.secrets) == 0 {
		return // secrets.existingSecret
	}
	require.True(t, slices.ContainsFunc(r.secrets, func(s corev1.Secret) bool { return s.Name == name }) || (optional != nil && *optional),
		"Secret %s is the chart's", name)
}

func podsOf(t *testing.T, r rendered, match map[string]string) *corev1.PodTemplateSpec {
	t.Helper()
	for i, d := range r.deployments {
		if labels.SelectorFromSet(match).Matches(labels.Set(d.Spec.Template.Labels)) {
			return &r.deployments[i].Spec.Template
		}
	}
	return nil
}

func hasPort(pod *corev1.PodTemplateSpec, name string) bool {
	return pod != nil && slices.ContainsFunc(pod.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
}

// checkEnvironment: every variable is one the configuration reads (the
// ecosystem's OLLAMA_HOST and OPENAI_* stand for REGSCRIBE_OLLAMA_HOST …),
// and the configuration loaded from them validates.
func checkEnvironment(t *testing.T, what string, env map[string]string) {
	t.Helper()
	known := config.Variables()
	for name := range env {
		require.True(t, slices.Contains(known, name) || slices.Contains(known, config.Prefix+"_"+name),
			"%s sets %s, which regscribe does not read", what, name)
	}
	// config.Load reads the process environment: the test's own is cleared
	// of every variable regscribe reads, then set to env.
	for _, name := range known {
		for _, n := range []string{name, strings.TrimPrefix(name, config.Prefix+"_")} {
			t.Setenv(n, "")
			require.NoError(t, os.Unsetenv(n))
		}
	}
	for name, value := range env {
		t.Setenv(name, value)
	}
	_, err := config.Load()
	require.NoError(t, err, "%s: the configuration it sets", what)
}

func TestChartValuesSchema(t *testing.T) {
	for _, tc := range []struct {
		set, want string
	}{
		{"worker.concurency=3", "additional properties 'concurency' not allowed"},
		{"model.provider=clippy", "/model/provider"},
		{"config.MODE=referrer", "'MODE' does not match pattern"},
		{"registries={registry.example.com}", "/registries/0"},
		{"image.digest=latest", "/image/digest"},
		{"web.replicas=2", "web.replicas above 1 needs web.persistence.enabled=false"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, err := helm(t, "template", "regscribe", chart, "--set", tc.set)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// Every value of values.yaml has a row in the chart's README.
func TestChartReadmeDocumentsEveryValue(t *testing.T) {
	raw, err := os.ReadFile(chart + "/values.yaml")
	require.NoError(t, err)
	var values map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &values))
	readme, err := os.ReadFile(chart + "/README.md")
	require.NoError(t, err)
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		last := prefix[strings.LastIndex(prefix, ".")+1:]
		if m, ok := v.(map[string]any); ok && len(m) > 0 && last != "resources" {
			for k, sub := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), sub)
			}
			return
		}
		require.Contains(t, string(readme), "| `"+prefix+"` |", "the chart's README documents %s", prefix)
	}
	walk("", values)
}

// The install commands of the READMEs are what this test renders: the
// chart's `helm install` lines decode strictly and configure every
// component, and the image the Compose file runs is the one the README pushes.
func TestReadmeInstallCommands(t *testing.T) {
	for _, file := range []string{"../README.md", chart + "/README.md"} {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		text := strings.ReplaceAll(string(raw), "\\\n", " ")
		const install = "helm install regscribe deploy/helm/regscribe"
		var found int
		for line := range strings.Lines(text) {
			if !strings.HasPrefix(line, install) {
				continue
			}
			found++
			line, _, _ = strings.Cut(line, "#")
			var args []string
			for _, a := range strings.Fields(strings.TrimPrefix(line, install)) {
				args = append(args, strings.Trim(a, "'"))
			}
			t.Run(file, func(t *testing.T) {
				r := render(t, args...)
				require.Len(t, r.deployments, 3)
				for _, d := range r.deployments {
					checkDeployment(t, d, r)
					require.True(t, slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool {
						return e.Name == "REGSCRIBE_REGISTRIES" && e.Value != ""
					}), "%s: %s names the registries", file, d.Name)
				}
			})
		}
		require.NotZero(t, found, "%s has `%s`", file, install)
	}
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "go run ./deploy/image localhost:5000/regscribe:dev", "the image compose.yaml runs")
}
