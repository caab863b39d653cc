package amqp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/sondehq/sonde/lab/rabbit"
)

// The live tests run against Debian's rabbitmq-server, started once per
// test binary on loopback with its own epmd, ports, node name and
// directories (package rabbit), and stopped in TestMain.

var (
	brokerOnce sync.Once
	theBroker  *rabbit.Node
	brokerErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theBroker != nil {
		if err := theBroker.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping rabbitmq-server:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// rabbitMQ returns the shared broker, starting it on first use. Without
// Debian's rabbitmq-server package the test skips, saying so; `make test`
// installs it first, so in CI these tests run.
func rabbitMQ(t *testing.T) *rabbit.Node {
	t.Helper()
	brokerOnce.Do(func() {
		theBroker, brokerErr = rabbit.Start(context.Background(), rabbit.Config{Name: "sonde-test"})
	})
	if errors.Is(brokerErr, rabbit.ErrNotInstalled) {
		t.Skipf("the live AMQP tests need Debian's rabbitmq-server: %v", brokerErr)
	}
	if brokerErr != nil {
		t.Fatal(brokerErr)
	}
	return theBroker
}
