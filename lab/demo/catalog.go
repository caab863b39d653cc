package demo

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// product is what the catalog sells.
type product struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
	Price    int    `json:"price_cents"`
}

var products = []product{
	{1, "Espresso beans, 1 kg", "coffee", 2490},
	{2, "Filter coffee, Ethiopia Guji, 250 g", "coffee", 1150},
	{3, "Decaf, Colombia, 500 g", "coffee", 1690},
	{4, "Sencha, 100 g", "tea", 890},
	{5, "Assam breakfast, 250 g", "tea", 720},
	{6, "Jasmine pearls, 50 g", "tea", 1320},
	{7, "Hand grinder", "gear", 8900},
	{8, "Gooseneck kettle", "gear", 5400},
	{9, "Pour-over dripper", "gear", 2200},
	{10, "Paper filters, 100", "gear", 490},
}

var categories = []string{"coffee", "tea", "gear"}

// productByID finds a product; IDs past the catalog are how the demo's
// clients ask for something that does not exist.
func productByID(id int) (product, bool) {
	if id < 1 || id > len(products) {
		return product{}, false
	}
	return products[id-1], true
}

// catalogHandler is the catalog's HTTP/2 API. Now and then the inventory
// is "busy" and answers 503, as a real one would under load.
func catalogHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/products", func(w http.ResponseWriter, r *http.Request) {
		cat := r.URL.Query().Get("category")
		var out []product
		for _, p := range products {
			if cat == "" || p.Category == cat {
				out = append(out, p)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"products": out, "count": len(out)})
	})
	mux.HandleFunc("GET /v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		p, ok := productByID(id)
		if !ok {
			writeJSON(w, http.StatusNotFound, errorBody("product not found"))
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("GET /v1/stock/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		if _, ok := productByID(id); !ok {
			writeJSON(w, http.StatusNotFound, errorBody("product not found"))
			return
		}
		if rand.IntN(100) < 3 {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, errorBody("inventory database busy"))
			return
		}
		if pause(r.Context(), time.Duration(2+rand.IntN(8))*time.Millisecond) != nil { // a database lookup
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "available": rand.IntN(40), "warehouse": "ams-1"})
	})
	return mux
}

// h2cOnly is the protocol set of a server or transport that speaks HTTP/2
// without TLS and with prior knowledge, as services in a mesh often do.
func h2cOnly() *http.Protocols {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func errorBody(msg string) map[string]string { return map[string]string{"error": msg} }
