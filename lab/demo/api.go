package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	ordersTopic = "orders"
	// requestIDHeader follows a request from the frontend to every service
	// it reaches, so that the UI can tie the entries together.
	requestIDHeader = "X-Request-Id"
	// downstreamTimeout bounds each call the API makes.
	downstreamTimeout = 2 * time.Second
)

// apiServer is the shop's HTTP/1 JSON API and the client of every other
// service. rdb is nil when redis-server is not installed.
type apiServer struct {
	catalog    *http.Client // HTTP/2 without TLS
	catalogURL string
	pay        *grpc.ClientConn
	rdb        *redis.Client
	kafka      *kgo.Client
	orders     atomic.Uint64
}

func (a *apiServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /api/products", a.listProducts)
	mux.HandleFunc("GET /api/products/{id}", a.getProduct)
	mux.HandleFunc("POST /api/orders", a.createOrder)
	mux.HandleFunc("GET /api/orders/{id}", a.getOrder)
	mux.HandleFunc("GET /api/orders/{id}/payments", a.orderPayments)
	mux.HandleFunc("GET /api/reports/daily", a.dailyReport)
	mux.HandleFunc("GET /api/recommendations", a.recommendations)
	return mux
}

// catalogGet calls the catalog and decodes its JSON answer into out when
// it is a 200.
func (a *apiServer) catalogGet(r *http.Request, path string, out any) (int, error) {
	ctx, cancel := context.WithTimeout(r.Context(), downstreamTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.catalogURL+path, nil)
	if err != nil {
		return 0, err
	}
	req.Host = host(catalog)
	req.Header.Set(requestIDHeader, r.Header.Get(requestIDHeader))
	req.Header.Set("Accept", "application/json")
	resp, err := a.catalog.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// listProducts reads through a short-lived Redis cache.
func (a *apiServer) listProducts(w http.ResponseWriter, r *http.Request) {
	cat := r.URL.Query().Get("category")
	key := "products:" + cat
	if a.rdb != nil {
		if b, err := a.rdb.Get(r.Context(), key).Bytes(); err == nil {
			w.Header().Set("X-Cache", "hit")
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
	}
	var list json.RawMessage
	code, err := a.catalogGet(r, "/v1/products?category="+cat, &list)
	if err != nil || code != http.StatusOK {
		writeJSON(w, http.StatusBadGateway, errorBody("catalog unavailable"))
		return
	}
	if a.rdb != nil {
		a.rdb.Set(r.Context(), key, []byte(list), 15*time.Second)
	}
	w.Header().Set("X-Cache", "miss")
	w.Header().Set("Content-Type", "application/json")
	w.Write(list)
}

func (a *apiServer) getProduct(w http.ResponseWriter, r *http.Request) {
	var p product
	code, err := a.catalogGet(r, "/v1/products/"+r.PathValue("id"), &p)
	switch {
	case err != nil:
		writeJSON(w, http.StatusBadGateway, errorBody("catalog unavailable"))
	case code == http.StatusNotFound:
		writeJSON(w, http.StatusNotFound, errorBody("no such product"))
	case code != http.StatusOK:
		writeJSON(w, http.StatusBadGateway, errorBody("catalog answered "+strconv.Itoa(code)))
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

// createOrder checks stock, charges the card, stores the order and
// announces it: every service of the shop in one request.
func (a *apiServer) createOrder(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ProductID int `json:"product_id"`
		Quantity  int `json:"quantity"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.Quantity < 1 {
		writeJSON(w, http.StatusBadRequest, errorBody("want {\"product_id\": N, \"quantity\": N ≥ 1}"))
		return
	}
	var stock struct {
		Available int `json:"available"`
	}
	code, err := a.catalogGet(r, "/v1/stock/"+strconv.Itoa(in.ProductID), &stock)
	switch {
	case err != nil:
		writeJSON(w, http.StatusBadGateway, errorBody("catalog unavailable"))
		return
	case code == http.StatusNotFound:
		writeJSON(w, http.StatusUnprocessableEntity, errorBody("no such product"))
		return
	case code != http.StatusOK:
		writeJSON(w, http.StatusServiceUnavailable, errorBody("inventory busy, try again"))
		return
	case stock.Available < in.Quantity:
		writeJSON(w, http.StatusConflict, errorBody("out of stock"))
		return
	}
	p, _ := productByID(in.ProductID)
	id := fmt.Sprintf("ord_%06d", a.orders.Add(1))
	total := p.Price * in.Quantity

	req, _ := structpb.NewStruct(map[string]any{"order_id": id, "amount_cents": total, "currency": "EUR", "card_token": "tok_visa_4242"})
	resp := new(structpb.Struct)
	ctx, cancel := context.WithTimeout(r.Context(), chargeDeadline)
	ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", r.Header.Get(requestIDHeader))
	err = a.pay.Invoke(ctx, chargeMethod, req, resp)
	cancel()
	switch status.Code(err) {
	case codes.OK:
	case codes.FailedPrecondition:
		writeJSON(w, http.StatusPaymentRequired, errorBody(status.Convert(err).Message()))
		return
	case codes.DeadlineExceeded:
		writeJSON(w, http.StatusGatewayTimeout, errorBody("payment timed out"))
		return
	default:
		writeJSON(w, http.StatusBadGateway, errorBody("payments unavailable"))
		return
	}
	order := map[string]any{"id": id, "product_id": in.ProductID, "quantity": in.Quantity, "total_cents": total,
		"payment_id": resp.GetFields()["payment_id"].GetStringValue(), "status": "paid", "created_at": time.Now().UTC()}
	body, _ := json.Marshal(order)
	if a.rdb != nil {
		a.rdb.Pipelined(r.Context(), func(p redis.Pipeliner) error {
			p.Set(r.Context(), "order:"+id, body, time.Hour)
			p.Incr(r.Context(), "stats:orders")
			p.LPush(r.Context(), "orders:recent", id)
			p.LTrim(r.Context(), "orders:recent", 0, 99)
			return nil
		})
	}
	pctx, cancel := context.WithTimeout(r.Context(), downstreamTimeout)
	defer cancel()
	a.kafka.ProduceSync(pctx, &kgo.Record{Topic: ordersTopic, Key: []byte(id), Value: body,
		Headers: []kgo.RecordHeader{{Key: "event-type", Value: []byte("order.created")}}})
	writeJSON(w, http.StatusCreated, order)
}

func (a *apiServer) getOrder(w http.ResponseWriter, r *http.Request) {
	if a.rdb == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody("order store unavailable"))
		return
	}
	b, err := a.rdb.Get(r.Context(), "order:"+r.PathValue("id")).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		writeJSON(w, http.StatusNotFound, errorBody("no such order"))
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, errorBody("order store unavailable"))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
}

// orderPayments gathers the payment history that payments streams.
func (a *apiServer) orderPayments(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), downstreamTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", r.Header.Get(requestIDHeader))
	stream, err := a.pay.NewStream(ctx, &paymentsDesc.Streams[0], historyMethod)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, errorBody("payments unavailable"))
		return
	}
	req, _ := structpb.NewStruct(map[string]any{"order_id": r.PathValue("id")})
	if err := stream.SendMsg(req); err != nil {
		writeJSON(w, http.StatusBadGateway, errorBody("payments unavailable"))
		return
	}
	stream.CloseSend()
	var events []map[string]any
	for {
		m := new(structpb.Struct)
		err := stream.RecvMsg(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeJSON(w, http.StatusBadGateway, errorBody(status.Convert(err).Message()))
			return
		}
		events = append(events, m.AsMap())
	}
	writeJSON(w, http.StatusOK, map[string]any{"order_id": r.PathValue("id"), "events": events})
}

// dailyReport is the slow endpoint. It also carries an old bug: it reads
// the order counter as a hash, and Redis answers WRONGTYPE.
func (a *apiServer) dailyReport(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var orders int64
	if a.rdb != nil {
		if err := a.rdb.HGetAll(r.Context(), "stats:orders").Err(); err != nil {
			orders, _ = a.rdb.Get(r.Context(), "stats:orders").Int64()
		}
	}
	if pause(r.Context(), time.Duration(300+rand.IntN(600))*time.Millisecond) != nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders_today": orders, "took_ms": time.Since(start).Milliseconds()})
}

func (a *apiServer) recommendations(w http.ResponseWriter, _ *http.Request) {
	if rand.IntN(2) == 0 {
		writeJSON(w, http.StatusInternalServerError, errorBody("recommendation model unavailable"))
		return
	}
	var picks []product
	for _, i := range rand.Perm(len(products))[:3] {
		picks = append(picks, products[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": picks})
}
