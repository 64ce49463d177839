package templates

// RoutingView is the routing explorer.
type RoutingView struct {
	Environments []string
	Environment  string
	Version      string
	Countries    []CountryOption
	States       []CountryOption
	Country      string
	State        string
	Checks       []HealthCheckOption
	Result       *RouteResult
	Glance       []GlanceRow
	Message      string // why nothing can be shown
}

// CountryOption is one location to choose.
type CountryOption struct {
	Code, Name, Group string
}

// HealthCheckOption is one health check that may be set failing.
type HealthCheckOption struct {
	Key, Label, Region, Host string
	Down                     bool
}

// RouteResult is where the chosen patient's request ends.
type RouteResult struct {
	Where       string
	Region      string
	Stack       string
	Maintenance bool
	Summary     string
	Chain       []RouteStep
	Down        []string
}

// RouteStep is one record (or CloudFront) on the way.
type RouteStep struct {
	Name, Routing, Choice, Target, Resource, Stack string
}

// GlanceRow is where a jurisdiction's typical patient goes with every
// region healthy and with their home region down.
type GlanceRow struct {
	Where, Jurisdiction string
	Healthy, HomeDown   string
	HomeDownURL         string
}
