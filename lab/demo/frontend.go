package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// frontendInFlight bounds the requests the frontend has open; a tick
	// that finds them all busy is skipped, so a slow lab never piles up.
	frontendInFlight = 8
	// frontendTimeout bounds each request.
	frontendTimeout = 5 * time.Second
	// recentOrders is how many order IDs the frontend remembers to read back.
	recentOrders = 32
)

// shopper is the frontend: it browses, orders, and reads orders back, at
// most rate requests a second.
type shopper struct {
	client *http.Client
	base   string // the API's service URL
	mu     sync.Mutex
	orders []string // recently created, newest last
}

func (s *shopper) run(ctx context.Context, rate float64) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	slots := make(chan struct{}, frontendInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-slots }()
				s.one(ctx)
			})
		default:
		}
	}
}

// one makes one request, picked the way a shop's traffic is spread.
func (s *shopper) one(ctx context.Context) {
	method, path, body := http.MethodGet, "", ""
	switch r := mrand.IntN(100); {
	case r < 30:
		path = "/api/products?category=" + categories[mrand.IntN(len(categories))]
	case r < 45:
		path = fmt.Sprintf("/api/products/%d", 1+mrand.IntN(len(products)+2)) // some do not exist
	case r < 65:
		method, path = http.MethodPost, "/api/orders"
		qty := 1 + mrand.IntN(3)
		if mrand.IntN(12) == 0 {
			qty = 0 // refused: a form that let an empty cart through
		}
		body = fmt.Sprintf(`{"product_id": %d, "quantity": %d}`, 1+mrand.IntN(len(products)+1), qty)
	case r < 77:
		path = "/api/orders/" + s.someOrder()
	case r < 87:
		path = "/api/orders/" + s.someOrder() + "/payments"
	case r < 91:
		path = "/api/reports/daily"
	case r < 96:
		path = "/api/recommendations"
	default:
		path = "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, frontendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, strings.NewReader(body))
	if err != nil {
		return
	}
	req.Host = host(api)
	req.Header.Set(requestIDHeader, requestID())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "shop-frontend/2.3")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		// A session token: the agent redacts it before the entry leaves.
		req.Header.Set("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.c2hvcHBlcg.demo")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if method == http.MethodPost && resp.StatusCode == http.StatusCreated {
		var o struct {
			ID string `json:"id"`
		}
		if json.NewDecoder(resp.Body).Decode(&o) == nil && o.ID != "" {
			s.remember(o.ID)
		}
	}
	io.Copy(io.Discard, resp.Body)
}

func (s *shopper) remember(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders = append(s.orders, id)
	if len(s.orders) > recentOrders {
		s.orders = s.orders[1:]
	}
}

// someOrder is a recent order, or now and then one that never existed.
func (s *shopper) someOrder() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.orders) == 0 || mrand.IntN(10) == 0 {
		return fmt.Sprintf("ord_%06d", 900000+mrand.IntN(99999))
	}
	return s.orders[mrand.IntN(len(s.orders))]
}

func requestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
