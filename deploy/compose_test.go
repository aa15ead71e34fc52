package deploy_test

import (
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// composeFile is the part of compose.yaml the test reads.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
}

// interpolation is Compose's ${NAME:-default}.
var interpolation = regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)

// The Compose file runs notifier, worker and web from the image the README
// pushes, each with an environment the configuration reads and accepts (with
// the defaults of its ${…:-…} variables), and its registry notifies the
// notifier where it listens, with its token.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("compose/compose.yaml")
	require.NoError(t, err)
	var compose composeFile
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	commands := map[string]map[string]string{}
	for name, s := range compose.Services {
		if !strings.Contains(s.Image, "regscribe") {
			continue
		}
		require.Equal(t, "localhost:5000/regscribe:dev", interpolation.ReplaceAllString(s.Image, "$1"),
			"%s runs the image the README's `go run ./deploy/image localhost:5000/regscribe:dev` pushes", name)
		require.Len(t, s.Command, 1, name)
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = interpolation.ReplaceAllString(v, "$1")
		}
		checkEnvironment(t, "compose service "+name, env)
		commands[s.Command[0]] = env
	}
	require.ElementsMatch(t, []string{"notifier", "worker", "web"}, slices.Collect(maps.Keys(commands)))

	raw, err = os.ReadFile("compose/registry.yml")
	require.NoError(t, err)
	var registry struct {
		Notifications struct {
			Endpoints []struct {
				URL     string              `yaml:"url"`
				Headers map[string][]string `yaml:"headers"`
			} `yaml:"endpoints"`
		} `yaml:"notifications"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &registry))
	ep := registry.Notifications.Endpoints[0]
	u, err := url.Parse(ep.URL)
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(commands["notifier"]["REGSCRIBE_LISTEN"])
	require.NoError(t, err)
	require.Equal(t, "notifier:"+port, u.Host, "the registry notifies the notifier where it listens")
	require.Equal(t, []string{"Bearer " + commands["notifier"]["REGSCRIBE_NOTIFY_TOKEN"]}, ep.Headers["Authorization"])
}
