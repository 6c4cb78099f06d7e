package discovery

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// ServiceName is the micro service name every monitor registers under.
const ServiceName = "hbmesh-monitor"

// Names of the endpoints, which are also the last token of their subjects
// (see [wire.Subjects.Control]).
const (
	EndpointStatus = "status"
	EndpointPeers  = "peers"
)

// Versioned type strings carried by every response, in the style of
// io.nats.micro.v1.ping_response.
const (
	StatusResponseType = "io.hbmesh.monitor.v1.status_response"
	PeersResponseType  = "io.hbmesh.monitor.v1.peers_response"
)

// payloadMargin is kept free below the connection's max payload so a reply
// never fails on a few bytes of protocol overhead.
const payloadMargin = 512

// invalid builds the configuration errors.
const invalid cfgerr.Of = "discovery"

// Source is what the service reports on. *monitor.Monitor satisfies it;
// every method must be safe for concurrent use, because each endpoint
// calls it from its own subscription goroutine.
type Source interface {
	ID() string
	// Peers is [monitor.Monitor.Peers]: a snapshot of every peer, in a
	// slice the caller may change.
	Peers() []monitor.PeerInfo
	// TopPeers is [monitor.Monitor.TopPeers]: the first limit peers in
	// the states given (any if none), worst first and then by id in
	// natural order, and how many peers are in those states. A request
	// with a limit takes it, which holds a monitor's lock for less than
	// Peers does.
	TopPeers(limit int, states ...monitor.State) ([]monitor.PeerInfo, int)
	Stats() monitor.Stats
	Ready() error
}

// Config configures [Register].
type Config struct {
	// Prefix is the subject prefix of the mesh, which must be the prefix
	// the monitor watches. Default wire.DefaultPrefix ("hb").
	Prefix string
	// Version is the hbmesh version, reported in the metadata as is and
	// used as the micro service version when it is semver (a leading "v"
	// is dropped); otherwise the service version is "0.0.0", because micro
	// refuses anything that is not semver. Default "".
	Version string
	// Logger receives errors of the service's subscriptions. Default:
	// discard.
	Logger *slog.Logger
	// Now is the clock used to stamp responses. Default time.Now.
	Now func() time.Time
	// Host and PID say where the monitor runs. When set they go into the
	// service metadata ("host", "pid") and every status reply, so that
	// monitors sharing an id can be found. Default: unset, left out.
	Host string
	PID  int
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{Prefix: wire.DefaultPrefix, Logger: slog.New(slog.DiscardHandler), Now: time.Now}
}

// Validate reports a field that cannot work, by name and value.
func (c *Config) Validate() error {
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
	}
	return nil
}

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	c.Prefix = cmp.Or(c.Prefix, d.Prefix)
	c.Logger = cmp.Or(c.Logger, d.Logger)
	if c.Now == nil { // a func: cmp.Or cannot compare it
		c.Now = d.Now
	}
}

// semver is the expression semver.org suggests, which micro also applies.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// ServiceVersion returns the micro service version for hbmesh version v:
// v without a leading "v" if that is semver, else "0.0.0".
func ServiceVersion(v string) string {
	if s := strings.TrimPrefix(v, "v"); semver.MatchString(s) {
		return s
	}
	return "0.0.0"
}

// Service is one monitor registered as a micro service.
type Service struct {
	svc  micro.Service
	src  Source
	cfg  Config
	nc   *nats.Conn
	subj wire.Subjects
	// instance is Info().ID, which every reply carries. It is set before
	// the endpoints can be called and never changed.
	instance string
}

// Register adds the micro service of src to nc and subscribes its
// endpoints; it is live when Register returns. Stop it with
// [Service.Stop]. The service also stops when nc is closed. micro hooks
// nc's closed and error handlers to do that, so set your own handlers on
// nc before calling Register: handlers set later replace micro's.
func Register(nc *nats.Conn, src Source, cfg Config) (*Service, error) {
	if nc == nil {
		return nil, invalid.Field("nc", nil, "is a nil *nats.Conn")
	}
	if src == nil {
		return nil, invalid.Field("Source", nil, "is nil")
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	subj, _ := wire.NewSubjects(cfg.Prefix)
	s := &Service{src: src, cfg: cfg, nc: nc, subj: subj}
	log := cfg.Logger.With("monitor", src.ID())
	meta := map[string]string{"monitor_id": src.ID(), "prefix": cfg.Prefix, "hbmesh_version": cfg.Version}
	if cfg.Host != "" {
		meta["host"] = cfg.Host
	}
	if cfg.PID != 0 {
		meta["pid"] = strconv.Itoa(cfg.PID)
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     ServiceVersion(cfg.Version),
		Description: "hbmesh monitor: liveness of the nodes beating on " + subj.Beats(),
		Metadata:    meta,
		ErrorHandler: func(_ micro.Service, err *micro.NATSError) {
			log.Warn("discovery service error", "subject", err.Subject, "err", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("discovery: add service %q: %w", ServiceName, err)
	}
	s.instance = svc.Info().ID
	for _, ep := range []struct {
		name string
		h    micro.HandlerFunc
	}{
		{EndpointStatus, s.handleStatus},
		{EndpointPeers, s.handlePeers},
	} {
		subject := subj.Control(ep.name)
		err := svc.AddEndpoint(ep.name, ep.h,
			micro.WithEndpointSubject(subject),
			// Every monitor must answer: see the package doc.
			micro.WithEndpointQueueGroupDisabled(),
		)
		if err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("discovery: add endpoint %q on %q: %w", ep.name, subject, err)
		}
	}
	// Live means the server has the endpoints' subscriptions, so that a
	// request from any connection reaches them rather than getting "no
	// responders". If nc is not connected, or drops during the flush,
	// nats.go sends the subscriptions again when it reconnects, so that is
	// not an error.
	if nc.IsConnected() {
		_ = nc.FlushTimeout(5 * time.Second)
	}
	s.svc = svc
	return s, nil
}

// Info returns the micro info of the service: its id and endpoints.
func (s *Service) Info() micro.Info { return s.svc.Info() }

// Stop drains the service's subscriptions and deregisters it. It is safe
// to call more than once.
func (s *Service) Stop() error {
	if err := s.svc.Stop(); err != nil {
		return fmt.Errorf("discovery: stop: %w", err)
	}
	return nil
}

// StatusResponse is the reply of the status endpoint: the monitor's
// [monitor.StatusJSON], the shape of the HTTP API's /api/status, with the
// fields that say which monitor answered and from where.
type StatusResponse struct {
	Type string `json:"type"` // StatusResponseType
	// Instance is the micro service instance id of the monitor that
	// answered, the id `nats micro ls` shows. It tells apart monitors
	// that share a Monitor id; monitors before it was added leave it out.
	Instance string `json:"instance,omitempty"`
	// Host and PID are Config.Host and Config.PID, when set.
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
	monitor.StatusJSON
}

// PeersRequest is the optional body of a peers request.
type PeersRequest struct {
	// State keeps only peers in this state ("alive", "suspect", "dead",
	// "left"); "" keeps all.
	State string `json:"state,omitempty"`
	// Limit keeps at most this many peers, worst first; 0 means no limit.
	Limit int `json:"limit,omitempty"`
}

// PeersResponse is the reply of the peers endpoint.
type PeersResponse struct {
	Type    string `json:"type"` // PeersResponseType
	Monitor string `json:"monitor"`
	// Instance is as in [StatusResponse].
	Instance string    `json:"instance,omitempty"`
	Time     time.Time `json:"time"`
	// Total is how many peers matched the request's state filter, before
	// Limit and truncation.
	Total int `json:"total"`
	// Truncated is set when Peers was cut to fit the max payload; Limit
	// alone does not set it.
	Truncated bool `json:"truncated"`
	// Peers are in the order of monitor.ComparePeers: worst state
	// first, then by id.
	Peers []monitor.PeerJSON `json:"peers"`
}

func (s *Service) handleStatus(req micro.Request) {
	st := s.src.Stats()
	resp := StatusResponse{Type: StatusResponseType, Instance: s.instance, Host: s.cfg.Host, PID: s.cfg.PID, StatusJSON: st.JSON(s.src.Ready())}
	resp.Monitor, resp.Prefix, resp.Version, resp.Time = s.src.ID(), s.cfg.Prefix, s.cfg.Version, s.cfg.Now().UTC()
	s.respond(req, resp)
}

func (s *Service) handlePeers(req micro.Request) {
	var q PeersRequest
	var want monitor.State
	if body := bytes.TrimSpace(req.Data()); len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err := dec.Decode(&q)
		if err == nil && q.State != "" {
			want, err = monitor.ParseState(q.State)
		}
		if err == nil && q.Limit < 0 {
			err = fmt.Errorf("limit %d is negative", q.Limit)
		}
		if err != nil {
			_ = req.Error("400", "bad peers request: "+err.Error(), nil)
			return
		}
	}
	now := s.cfg.Now()
	resp := PeersResponse{Type: PeersResponseType, Monitor: s.src.ID(), Instance: s.instance, Time: now.UTC()}
	var infos []monitor.PeerInfo
	if q.Limit > 0 {
		var states []monitor.State
		if want != monitor.StateUnknown {
			states = []monitor.State{want}
		}
		infos, resp.Total = s.src.TopPeers(q.Limit, states...)
	} else {
		infos = slices.DeleteFunc(s.src.Peers(), func(p monitor.PeerInfo) bool {
			return want != monitor.StateUnknown && p.State != want
		})
		monitor.SortPeers(infos)
		resp.Total = len(infos)
	}
	resp.Peers = make([]monitor.PeerJSON, len(infos))
	for i := range infos {
		resp.Peers[i] = infos[i].JSON(now)
	}
	data, err := json.Marshal(resp)
	if err != nil {
		s.fail(req, err)
		return
	}
	if budget := int(s.nc.MaxPayload()) - payloadMargin; len(data) > budget {
		data, err = truncate(resp, budget)
		if err != nil {
			s.fail(req, err)
			return
		}
	}
	if err := req.Respond(data); err != nil {
		s.cfg.Logger.Warn("discovery: respond", "subject", req.Subject(), "err", err)
	}
}

// truncate encodes resp with as many of its peers as fit in budget bytes.
func truncate(resp PeersResponse, budget int) ([]byte, error) {
	all := resp.Peers
	resp.Peers, resp.Truncated = []monitor.PeerJSON{}, true
	env, err := json.Marshal(resp)
	if err != nil {
		return nil, err
	}
	size, n := len(env), 0
	for ; n < len(all); n++ {
		b, err := json.Marshal(all[n])
		if err != nil {
			return nil, err
		}
		if size += len(b) + 1; size > budget { // +1 for the comma
			break
		}
	}
	resp.Peers = all[:n]
	return json.Marshal(resp)
}

func (s *Service) respond(req micro.Request, v any) {
	if err := req.RespondJSON(v); err != nil {
		s.cfg.Logger.Warn("discovery: respond", "subject", req.Subject(), "err", err)
	}
}

func (s *Service) fail(req micro.Request, err error) {
	s.cfg.Logger.Error("discovery: encode response", "subject", req.Subject(), "err", err)
	_ = req.Error("500", err.Error(), nil)
}
