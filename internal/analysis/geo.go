package analysis

import "sort"

// Location is where a patient's DNS query comes from, as Route 53's
// geolocation routing sees it: a continent, a country (ISO 3166-1
// alpha-2) and, in the United States, a state.
type Location struct {
	Continent   string `json:"continent"`
	Country     string `json:"country"`
	Subdivision string `json:"subdivision,omitempty"`
}

// Country is one country the routing explorer offers.
type Country struct {
	Code, Name, Continent string
}

// continents are Route 53's continent codes
// (https://docs.aws.amazon.com/Route53/latest/APIReference/API_GeoLocation.html).
var continents = map[string]string{
	"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe", "NA": "North America", "OC": "Oceania", "SA": "South America",
}

// ContinentName returns the name of a Route 53 continent code.
func ContinentName(code string) string { return continents[code] }

// countries is a selection of countries across every continent: each
// jurisdiction's and its neighbours', and enough of the rest to see where
// the default record sends them. Continents follow Route 53's assignment.
var countries = []Country{
	// Europe: the EU's 27, the EEA and its neighbours.
	{"AT", "Austria", "EU"}, {"BE", "Belgium", "EU"}, {"BG", "Bulgaria", "EU"}, {"HR", "Croatia", "EU"}, {"CY", "Cyprus", "EU"},
	{"CZ", "Czechia", "EU"}, {"DK", "Denmark", "EU"}, {"EE", "Estonia", "EU"}, {"FI", "Finland", "EU"}, {"FR", "France", "EU"},
	{"DE", "Germany", "EU"}, {"GR", "Greece", "EU"}, {"HU", "Hungary", "EU"}, {"IE", "Ireland", "EU"}, {"IT", "Italy", "EU"},
	{"LV", "Latvia", "EU"}, {"LT", "Lithuania", "EU"}, {"LU", "Luxembourg", "EU"}, {"MT", "Malta", "EU"}, {"NL", "Netherlands", "EU"},
	{"PL", "Poland", "EU"}, {"PT", "Portugal", "EU"}, {"RO", "Romania", "EU"}, {"SK", "Slovakia", "EU"}, {"SI", "Slovenia", "EU"},
	{"ES", "Spain", "EU"}, {"SE", "Sweden", "EU"}, {"IS", "Iceland", "EU"}, {"LI", "Liechtenstein", "EU"}, {"NO", "Norway", "EU"},
	{"CH", "Switzerland", "EU"}, {"GB", "United Kingdom", "EU"}, {"UA", "Ukraine", "EU"}, {"RS", "Serbia", "EU"},
	// North America.
	{"US", "United States", "NA"}, {"CA", "Canada", "NA"}, {"MX", "Mexico", "NA"}, {"PR", "Puerto Rico", "NA"}, {"CR", "Costa Rica", "NA"},
	// South America.
	{"BR", "Brazil", "SA"}, {"AR", "Argentina", "SA"}, {"CL", "Chile", "SA"}, {"CO", "Colombia", "SA"}, {"PE", "Peru", "SA"},
	// Asia.
	{"SG", "Singapore", "AS"}, {"MY", "Malaysia", "AS"}, {"ID", "Indonesia", "AS"}, {"TH", "Thailand", "AS"}, {"VN", "Vietnam", "AS"},
	{"PH", "Philippines", "AS"}, {"JP", "Japan", "AS"}, {"KR", "South Korea", "AS"}, {"CN", "China", "AS"}, {"HK", "Hong Kong", "AS"},
	{"TW", "Taiwan", "AS"}, {"IN", "India", "AS"}, {"AE", "United Arab Emirates", "AS"}, {"SA", "Saudi Arabia", "AS"}, {"IL", "Israel", "AS"},
	{"TR", "Turkey", "AS"},
	// Oceania.
	{"AU", "Australia", "OC"}, {"NZ", "New Zealand", "OC"},
	// Africa.
	{"ZA", "South Africa", "AF"}, {"NG", "Nigeria", "AF"}, {"EG", "Egypt", "AF"}, {"KE", "Kenya", "AF"}, {"MA", "Morocco", "AF"},
}

// usStates are the subdivisions Route 53 knows in the United States.
var usStates = map[string]string{
	"AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado", "CT": "Connecticut",
	"DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
	"IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
	"MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
	"NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
	"NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
	"RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah",
	"VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}

// Countries returns the countries the explorer offers, by name.
func Countries() []Country {
	out := append([]Country(nil), countries...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// USStates returns the United States' subdivisions as code, name pairs,
// by name.
func USStates() [][2]string {
	out := make([][2]string, 0, len(usStates))
	for c, n := range usStates {
		out = append(out, [2]string{c, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1] < out[j][1] })
	return out
}

// LocationOf returns the location of a country code (and, in the United
// States, a state code), and whether the country is known.
func LocationOf(country, subdivision string) (Location, bool) {
	for _, c := range countries {
		if c.Code == country {
			l := Location{Continent: c.Continent, Country: c.Code}
			if country == "US" {
				if _, ok := usStates[subdivision]; ok {
					l.Subdivision = subdivision
				}
			}
			return l, true
		}
	}
	return Location{}, false
}

// Describe names the location for a reader: "Texas, United States".
func (l Location) Describe() string {
	name := l.Country
	for _, c := range countries {
		if c.Code == l.Country {
			name = c.Name
		}
	}
	if s, ok := usStates[l.Subdivision]; ok && l.Country == "US" {
		return s + ", " + name
	}
	return name
}
