package koogallery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// KitKind names a joint-operation (联营) kit sync interface (§6).
type KitKind string

// Kit sync interfaces.
const (
	KitTenantSync      KitKind = "tenantSync"
	KitApplicationSync KitKind = "applicationSync"
	KitAuthSync        KitKind = "authSync"
	KitSingleOrgSync   KitKind = "singleOrgSync"
	KitAllOrgSync      KitKind = "allOrgSync"
)

// KitPathPrefix is the path KooGallery appends to the production address for V2 kit calls.
const KitPathPrefix = "/produceAPI/v2/"

// Kit paths, appended by KooGallery to the production address.
const (
	KitPathTenantSync      = KitPathPrefix + string(KitTenantSync)
	KitPathApplicationSync = KitPathPrefix + string(KitApplicationSync)
	KitPathAuthSync        = KitPathPrefix + string(KitAuthSync)
	KitPathSingleOrgSync   = KitPathPrefix + string(KitSingleOrgSync)
	KitPathAllOrgSync      = KitPathPrefix + string(KitAllOrgSync)
)

// KitKinds lists every kit sync interface.
func KitKinds() []KitKind {
	return []KitKind{KitTenantSync, KitApplicationSync, KitAuthSync, KitSingleOrgSync, KitAllOrgSync}
}

// Path is the kit path of k.
func (k KitKind) Path() string { return KitPathPrefix + string(k) }

// KitKindFromPath returns the kit interface a request path ends with, so that a production
// address with its own prefix still routes.
func KitKindFromPath(path string) (KitKind, bool) {
	for _, k := range KitKinds() {
		if strings.HasSuffix(path, k.Path()) {
			return k, true
		}
	}
	return "", false
}

// Kit flag values (§6); FlagRevoke is only valid for authSync.
const (
	FlagDelete = 0
	FlagAdd    = 1
	FlagModify = 2
	FlagRevoke = 3
)

// MaxAuthSyncUsers is the documented maximum of users in one authSync call.
const MaxAuthSyncUsers = 500

const (
	maxName   = 255
	maxOrg    = 128
	maxSecret = 4096
	maxMobile = 32
	maxEmail  = 128
	maxOrgs   = 10000
)

// KitRequest is a parsed kit sync request.
type KitRequest interface {
	// Kind is the kit interface this request type belongs to.
	Kind() KitKind
	// IsTest reports a debug call (testFlag 1).
	IsTest() bool
	// Validate checks required fields, lengths, enums and formats.
	Validate() error
}

// KitCommon holds the fields every kit body carries. InstanceID is mandatory in the table but
// documented as empty when the seller applies for app credentials, so only its length is checked.
type KitCommon struct {
	InstanceID string `json:"instanceId"`
	TestFlag   Int    `json:"testFlag"`
	TimeStamp  string `json:"timeStamp"`
}

// IsTest reports a debug call.
func (k *KitCommon) IsTest() bool { return k.TestFlag.Set && k.TestFlag.Value == 1 }

func (k *KitCommon) check(c *checker) {
	c.optional("instanceId", k.InstanceID, maxID)
	c.intEnum("testFlag", k.TestFlag, 0, 1)
	c.kitTime("timeStamp", k.TimeStamp)
}

// TenantSyncRequest is tenantSync: an enterprise was added, modified or deleted.
type TenantSyncRequest struct {
	KitCommon
	OrderID    string `json:"orderId"`
	TenantID   string `json:"tenantId"`
	TenantCode string `json:"tenantCode"`
	Name       string `json:"name"`
	DomainName string `json:"domainName"`
	Flag       Int    `json:"flag"`
}

// Kind implements KitRequest.
func (*TenantSyncRequest) Kind() KitKind { return KitTenantSync }

// Validate implements KitRequest.
func (r *TenantSyncRequest) Validate() error {
	var c checker
	r.check(&c)
	c.optional("orderId", r.OrderID, maxID)
	c.required("tenantId", r.TenantID, maxID)
	c.required("tenantCode", r.TenantCode, maxID)
	c.required("name", r.Name, maxName)
	c.optional("domainName", r.DomainName, maxName)
	c.intEnum("flag", r.Flag, FlagDelete, FlagAdd, FlagModify)
	return c.err
}

// ApplicationSyncRequest is applicationSync. ClientSecret is RSA-OAEP encrypted with the
// merchant's public key; see DecryptClientSecret.
type ApplicationSyncRequest struct {
	KitCommon
	TenantID     string `json:"tenantId"`
	AppID        string `json:"appId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	Flag         Int    `json:"flag"`
}

// Kind implements KitRequest.
func (*ApplicationSyncRequest) Kind() KitKind { return KitApplicationSync }

// Validate implements KitRequest.
func (r *ApplicationSyncRequest) Validate() error {
	var c checker
	r.check(&c)
	c.required("tenantId", r.TenantID, maxID)
	c.required("appId", r.AppID, maxID)
	c.required("clientId", r.ClientID, maxID)
	c.intEnum("flag", r.Flag, FlagDelete, FlagAdd, FlagModify)
	if r.Flag.Value == FlagDelete {
		c.optional("clientSecret", r.ClientSecret, maxSecret)
	} else {
		c.required("clientSecret", r.ClientSecret, maxSecret)
	}
	return c.err
}

// User is one entry of authSync's userList.
type User struct {
	UserName     string     `json:"userName"`
	Name         string     `json:"name"`
	OrgCode      string     `json:"orgCode"`
	Position     string     `json:"position,omitempty"`
	EmployeeCode string     `json:"employeeCode,omitempty"`
	EmployeeType FlexString `json:"employeeType,omitempty"`
	Role         string     `json:"role"`
	Enable       FlexString `json:"enable"`
	Mobile       string     `json:"mobile,omitempty"`
	Email        string     `json:"email,omitempty"`
	WorkPlace    string     `json:"workPlace,omitempty"`
}

// User roles of authSync.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

func (u *User) check(c *checker, i int) {
	p := fmt.Sprintf("userList[%d].", i)
	c.required(p+"userName", u.UserName, maxID)
	c.required(p+"name", u.Name, maxID)
	c.required(p+"orgCode", u.OrgCode, maxID)
	c.oneOf(p+"role", u.Role, RoleUser, RoleAdmin)
	c.oneOf(p+"enable", string(u.Enable), "true", "false")
	c.optional(p+"mobile", u.Mobile, maxMobile)
	c.optional(p+"email", u.Email, maxEmail)
	c.optional(p+"position", u.Position, maxName)
	c.optional(p+"employeeCode", u.EmployeeCode, maxID)
	c.optional(p+"workPlace", u.WorkPlace, maxName)
	if u.EmployeeType != "" {
		c.oneOf(p+"employeeType", string(u.EmployeeType), "1", "2", "3", "4")
	}
}

// UserList is authSync's userList. V1 sent it as a JSON string holding the array, so both forms
// are accepted.
type UserList []User

// UnmarshalJSON accepts an array or a string holding an array.
func (l *UserList) UnmarshalJSON(b []byte) error {
	return unmarshalListOrString(b, (*[]User)(l))
}

// AuthSyncRequest is authSync: users were authorised, modified or revoked.
type AuthSyncRequest struct {
	KitCommon
	TenantID        string   `json:"tenantId"`
	AppID           string   `json:"appId"`
	UserList        UserList `json:"userList"`
	CurrentSyncTime string   `json:"currentSyncTime"`
	Flag            Int      `json:"flag"`
}

// Kind implements KitRequest.
func (*AuthSyncRequest) Kind() KitKind { return KitAuthSync }

// Validate implements KitRequest.
func (r *AuthSyncRequest) Validate() error {
	var c checker
	r.check(&c)
	c.required("tenantId", r.TenantID, maxID)
	c.required("appId", r.AppID, maxID)
	c.kitTime("currentSyncTime", r.CurrentSyncTime)
	c.intEnum("flag", r.Flag, FlagDelete, FlagAdd, FlagModify, FlagRevoke)
	switch {
	case len(r.UserList) == 0:
		c.fail(KindMissingField, "userList is required")
	case len(r.UserList) > MaxAuthSyncUsers:
		c.fail(KindFieldTooLong, "userList has %d users, the maximum is %d", len(r.UserList), MaxAuthSyncUsers)
	}
	for i := range r.UserList {
		r.UserList[i].check(&c, i)
	}
	return c.err
}

// SingleOrgSyncRequest is singleOrgSync: one department was added, modified or deleted.
type SingleOrgSyncRequest struct {
	KitCommon
	TenantID   string `json:"tenantId"`
	OrgCode    string `json:"orgCode"`
	OrgName    string `json:"orgName"`
	ParentCode string `json:"parentCode,omitempty"`
	Flag       Int    `json:"flag"`
}

// Kind implements KitRequest.
func (*SingleOrgSyncRequest) Kind() KitKind { return KitSingleOrgSync }

// Validate implements KitRequest.
func (r *SingleOrgSyncRequest) Validate() error {
	var c checker
	r.check(&c)
	c.required("tenantId", r.TenantID, maxID)
	c.required("orgCode", r.OrgCode, maxID)
	c.required("orgName", r.OrgName, maxOrg)
	c.optional("parentCode", r.ParentCode, maxID)
	c.intEnum("flag", r.Flag, FlagDelete, FlagAdd, FlagModify)
	return c.err
}

// OrgInfo is one department of allOrgSync.
type OrgInfo struct {
	OrgCode    string `json:"orgCode"`
	OrgName    string `json:"orgName"`
	ParentCode string `json:"parentCode,omitempty"`
}

// OrgInfoList is allOrgSync's orgInfoList. The V2 example still shows a stringified array, so
// both forms are accepted.
type OrgInfoList []OrgInfo

// UnmarshalJSON accepts an array or a string holding an array.
func (l *OrgInfoList) UnmarshalJSON(b []byte) error {
	return unmarshalListOrString(b, (*[]OrgInfo)(l))
}

// AllOrgSyncRequest is allOrgSync: the full department tree.
type AllOrgSyncRequest struct {
	KitCommon
	TenantID    string      `json:"tenantId"`
	OrgInfoList OrgInfoList `json:"orgInfoList"`
}

// Kind implements KitRequest.
func (*AllOrgSyncRequest) Kind() KitKind { return KitAllOrgSync }

// Validate implements KitRequest.
func (r *AllOrgSyncRequest) Validate() error {
	var c checker
	r.check(&c)
	c.required("tenantId", r.TenantID, maxID)
	switch {
	case len(r.OrgInfoList) == 0:
		c.fail(KindMissingField, "orgInfoList is required")
	case len(r.OrgInfoList) > maxOrgs:
		c.fail(KindFieldTooLong, "orgInfoList has %d entries, the maximum is %d", len(r.OrgInfoList), maxOrgs)
	}
	for i, o := range r.OrgInfoList {
		p := fmt.Sprintf("orgInfoList[%d].", i)
		c.required(p+"orgCode", o.OrgCode, maxID)
		c.required(p+"orgName", o.OrgName, maxOrg)
		c.optional(p+"parentCode", o.ParentCode, maxID)
	}
	return c.err
}

// NewKitCommon returns the common kit fields; the simulator and tests build requests with it.
func NewKitCommon(instanceID string, test bool, timeStamp string) KitCommon {
	flag := 0
	if test {
		flag = 1
	}
	return KitCommon{InstanceID: instanceID, TestFlag: NewInt(flag), TimeStamp: timeStamp}
}

func unmarshalListOrString[T any](b []byte, dst *[]T) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decoding list string: %w", err)
		}
		b = []byte(s)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("decoding list: %w", err)
	}
	return nil
}

func newKitRequest(kind KitKind) KitRequest {
	switch kind {
	case KitTenantSync:
		return &TenantSyncRequest{}
	case KitApplicationSync:
		return &ApplicationSyncRequest{}
	case KitAuthSync:
		return &AuthSyncRequest{}
	case KitSingleOrgSync:
		return &SingleOrgSyncRequest{}
	case KitAllOrgSync:
		return &AllOrgSyncRequest{}
	}
	return nil
}
