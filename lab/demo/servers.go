package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/grpc"

	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/lab/rabbit"
)

// redisStartWait bounds redis-server's start, which takes milliseconds.
const redisStartWait = 10 * time.Second

// servers is what the clients need to know of the running servers.
type servers struct {
	payments *paymentsServer
	redis    bool   // redis-server runs
	kafka    string // the broker's address
	// rabbitReady is closed once rabbitmq-server accepts connections
	// (rabbitUp) or will not (not installed, failed, stopped).
	rabbitReady chan struct{}
	rabbitUp    bool
}

// startServers starts the server of every protocol, rabbitmq-server in the
// background since it takes seconds, and adds their stops to down.
func (d *Demo) startServers(ctx context.Context, down *teardown) (*servers, error) {
	s := &servers{payments: &paymentsServer{}, rabbitReady: make(chan struct{})}

	ln, err := d.pods[catalog].Listen("tcp", fmt.Sprintf(":%d", catalogPort))
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	hs := &http.Server{Handler: catalogHandler(), Protocols: h2cOnly(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	down.add(hs.Close)
	d.say("http2", catalog, "a product catalog over HTTP/2 without TLS")

	if ln, err = d.pods[payments].Listen("tcp", fmt.Sprintf(":%d", paymentsPort)); err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	gs := grpc.NewServer()
	gs.RegisterService(&paymentsDesc, s.payments)
	go gs.Serve(ln)
	down.add(func() error { gs.Stop(); return nil })
	d.say("grpc", payments, paymentsService+" (a unary call and a server stream)")

	kp := d.pods[kafkaW]
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, ordersTopic),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return kp.Listen(network, netip.AddrPortFrom(kp.IP, kafkaPort).String())
		}))
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	down.add(func() error { kc.Close(); return nil })
	s.kafka = kc.ListenAddrs()[0]
	d.say("kafka", kafkaW, "a Kafka broker (franz-go kfake) with the topic "+ordersTopic)

	if s.redis, err = d.startRedis(ctx); err != nil {
		return nil, err
	}
	d.startRabbit(ctx, s, down)
	return s, nil
}

// startRedis runs Debian's redis-server in its pod, or says why not.
func (d *Demo) startRedis(ctx context.Context) (bool, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(d.out, "redis: skipped: redis-server is not installed (Debian: apt-get install -y redis-server)")
		return false, nil
	}
	p := d.pods[redisW]
	cmd := p.Command(context.Background(), "redis-server", "--port", fmt.Sprint(redisPort), "--bind", p.IP.String(),
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("starting redis-server: %w", err)
	}
	d.lab.Track(cmd) // the lab kills it when it closes
	// Asked from its own pod, the readiness check stays on the pod's
	// loopback and out of the capture.
	rdb := newRedis(p, netip.AddrPortFrom(p.IP, redisPort))
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, redisStartWait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for rdb.Ping(ctx).Err() != nil {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("redis-server did not answer PING within %v", redisStartWait)
		case <-tick.C:
		}
	}
	d.say("redis", redisW, "redis-server")
	return true, nil
}

// startRabbit starts rabbitmq-server in its pod in the background, or says
// why not, and closes s.rabbitReady when the outcome is known.
func (d *Demo) startRabbit(ctx context.Context, s *servers, down *teardown) {
	if !rabbit.Installed() {
		fmt.Fprintln(d.out, "amqp: skipped: rabbitmq-server is not installed (Debian: apt-get install -y rabbitmq-server)")
		close(s.rabbitReady)
		return
	}
	p := d.pods[rabbitW]
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var node *rabbit.Node
	go func() {
		defer close(done)
		defer close(s.rabbitReady)
		n, err := rabbit.Start(ctx, rabbit.Config{IP: p.IP, Netns: p.Namespace.Name, Dial: p.DialContext, Name: Node})
		if err != nil {
			if ctx.Err() == nil {
				first, _, _ := strings.Cut(err.Error(), "\n")
				fmt.Fprintf(d.out, "amqp: skipped: %s\n", first)
			}
			return
		}
		node, s.rabbitUp = n, true
		d.say("amqp", rabbitW, "rabbitmq-server")
	}()
	down.add(func() error {
		cancel()
		<-done
		if node == nil {
			return nil
		}
		return node.Stop()
	})
	fmt.Fprintf(d.out, "amqp: %s: starting rabbitmq-server (it takes 10 to 20 seconds)\n", spec(rabbitW).Name)
}

// say tells what a pod serves and where.
func (d *Demo) say(proto, workload, what string) {
	where := netip.AddrPortFrom(d.pods[workload].IP, spec(workload).port).String()
	if svc, ok := d.svc[workload]; ok {
		where += ", service " + workload + " at " + svc.String()
	}
	fmt.Fprintf(d.out, "%s: %s: %s on %s\n", proto, spec(workload).Name, what, where)
}

func newRedis(from *netlab.Pod, addr netip.AddrPort) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:   addr.String(),
		Dialer: from.DialContext,
		// redis-server 7.0 does not know CLIENT SETINFO; asking would make
		// an error entry per connection.
		DisableIdentity: true,
		PoolSize:        4,
	})
}
