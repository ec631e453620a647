package upstream

import "time"

// The upstream resources, exactly as the Investment API puts them on the wire.
// Money and balances stay decimal strings end to end: the gateway never does
// arithmetic on them, so it never rounds them.

// VirtualCashIncrease is a virtual cash increase (POST /virtual_cash_balances/increases).
type VirtualCashIncrease struct {
	ID             string    `json:"id"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	AccountGroupID string    `json:"account_group_id"`
	Amount         string    `json:"amount"`
	Currency       string    `json:"currency"`
	Status         string    `json:"status"` // ISSUED, CONFIRMED
}

// VirtualCashDecrease is a virtual cash decrease (POST /virtual_cash_balances/decreases).
type VirtualCashDecrease struct {
	ID             string    `json:"id"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	AccountGroupID string    `json:"account_group_id"`
	Amount         string    `json:"amount"`
	Currency       string    `json:"currency"`
	Status         string    `json:"status"` // ISSUED, CONFIRMED, QUEUED, CANCELLED
}

// Topup is a top-up (POST /payments/topups).
type Topup struct {
	ID                  string    `json:"id"`
	CreatedAt           time.Time `json:"created_at"`
	AccountGroupID      string    `json:"account_group_id"`
	CashAmount          string    `json:"cash_amount"`
	Currency            string    `json:"currency"`
	Status              string    `json:"status"` // CONFIRMED, SETTLED, CANCELLED (cancel rules also name NEW)
	SettlementReference string    `json:"settlement_reference,omitempty"`
}

// DirectDebit is a direct debit (POST /payments/direct_debits).
type DirectDebit struct {
	ID                    string    `json:"id"`
	CreatedAt             time.Time `json:"created_at"`
	UserID                string    `json:"user_id"`
	AccountGroupID        string    `json:"account_group_id"`
	MandateID             string    `json:"mandate_id"`
	CashAmount            string    `json:"cash_amount"`
	Currency              string    `json:"currency"`
	RemittanceInformation string    `json:"remittance_information,omitempty"`
	Status                string    `json:"status"` // NEW, PROCESSING, CONFIRMED, CANCELLED
}

// Withdrawal is a withdrawal (POST /payments/withdrawals).
type Withdrawal struct {
	ID                    string    `json:"id"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
	UserID                string    `json:"user_id"`
	AccountGroupID        string    `json:"account_group_id"`
	ReferenceAccountID    string    `json:"reference_account_id"`
	Amount                string    `json:"amount"`
	Currency              string    `json:"currency"`
	RemittanceInformation string    `json:"remittance_information"`
	Status                string    `json:"status"` // NEW, PROCESSING, CONFIRMED, CANCELLED
}

// CashBalance is an account group's cash balance
// (GET /account_groups/{account_group_id}/payments/cash_balance).
type CashBalance struct {
	AccountGroupID         string `json:"account_group_id"`
	Currency               string `json:"currency"`
	Balance                string `json:"balance"`
	LockedForTrading       string `json:"locked_for_trading"`
	PendingSettlement      string `json:"pending_settlement"`
	AvailableForWithdrawal string `json:"available_for_withdrawal"`
	AvailableForTrading    string `json:"available_for_trading"`
}

// Webhook is a webhook subscription (GET /webhooks/{webhook_id}).
type Webhook struct {
	ID        string        `json:"id"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	Title     string        `json:"title"`
	URL       string        `json:"url"`
	Enabled   bool          `json:"enabled"`
	Type      []string      `json:"type"` // event categories, e.g. TOPUP, CASH_BALANCE; ALL for every one
	Config    WebhookConfig `json:"config"`
}

// WebhookConfig is how Upvest packs a subscription's deliveries.
type WebhookConfig struct {
	Delay          string `json:"delay,omitempty"`            // longest wait while collecting a delivery, e.g. 5s
	MaxPackageSize int    `json:"max_package_size,omitempty"` // bytes per delivery body, 100..1048576
}

// The creating request bodies.

// VirtualCashRequest is the body of both virtual cash POSTs.
type VirtualCashRequest struct {
	AccountGroupID string `json:"account_group_id"`
	Amount         string `json:"amount"`
	Currency       string `json:"currency"`
}

// CreateTopupRequest is the body of POST /payments/topups.
type CreateTopupRequest struct {
	AccountGroupID string `json:"account_group_id"`
	CashAmount     string `json:"cash_amount"`
	Currency       string `json:"currency"`
}

// CreateDirectDebitRequest is the body of POST /payments/direct_debits.
type CreateDirectDebitRequest struct {
	UserID                string `json:"user_id"`
	AccountGroupID        string `json:"account_group_id"`
	MandateID             string `json:"mandate_id"`
	CashAmount            string `json:"cash_amount"`
	RemittanceInformation string `json:"remittance_information,omitempty"`
}

// CreateWithdrawalRequest is the body of POST /payments/withdrawals.
type CreateWithdrawalRequest struct {
	ReferenceAccountID    string `json:"reference_account_id"`
	AccountGroupID        string `json:"account_group_id"`
	UserID                string `json:"user_id"`
	Amount                string `json:"amount"`
	RemittanceInformation string `json:"remittance_information,omitempty"`
}

// CreateWebhookRequest is the body of POST /webhooks.
type CreateWebhookRequest struct {
	Title  string         `json:"title"`
	URL    string         `json:"url"`
	Type   []string       `json:"type,omitempty"` // default: ALL
	Config *WebhookConfig `json:"config,omitempty"`
}

// UpdateWebhookRequest is the body of PATCH /webhooks/{webhook_id}: only
// the fields set are changed.
type UpdateWebhookRequest struct {
	Title   *string        `json:"title,omitempty"`
	URL     *string        `json:"url,omitempty"`
	Enabled *bool          `json:"enabled,omitempty"`
	Type    []string       `json:"type,omitempty"`
	Config  *WebhookConfig `json:"config,omitempty"`
}

// Listing.

// ListParams are the upstream's paging parameters (limit/offset/sort/order).
type ListParams struct {
	Limit  int    // 0..1000; 0 means the upstream default (100)
	Offset int    // >= 0
	Sort   string // "id" or "created_at"; "" for the upstream default
	Order  string // "ASC" or "DESC"; "" for the upstream default
}

// ListMeta is the "meta" object of a list answer.
type ListMeta struct {
	Offset     int    `json:"offset"`
	Limit      int    `json:"limit"`
	Count      int    `json:"count"`
	TotalCount int    `json:"total_count"`
	Sort       string `json:"sort,omitempty"`
	Order      string `json:"order,omitempty"`
}

// List is one page of a list answer.
type List[T any] struct {
	Meta ListMeta `json:"meta"`
	Data []T      `json:"data"`
}

// Statuses that end a resource's life: a top-up, withdrawal, direct debit
// or virtual cash decrease that was cancelled, or that went through.
const (
	StatusCancelled = "CANCELLED"
	StatusConfirmed = "CONFIRMED"
)

// AccountGroup is the account group a resource belongs to, so that callers
// may be held to theirs whatever the resource.
func (v *VirtualCashIncrease) AccountGroup() string { return v.AccountGroupID }
func (v *VirtualCashDecrease) AccountGroup() string { return v.AccountGroupID }
func (t *Topup) AccountGroup() string               { return t.AccountGroupID }
func (d *DirectDebit) AccountGroup() string         { return d.AccountGroupID }
func (w *Withdrawal) AccountGroup() string          { return w.AccountGroupID }
func (b *CashBalance) AccountGroup() string         { return b.AccountGroupID }

// GetStatus is a resource's status word, e.g. CANCELLED.
func (v *VirtualCashDecrease) GetStatus() string { return v.Status }
func (t *Topup) GetStatus() string               { return t.Status }
func (d *DirectDebit) GetStatus() string         { return d.Status }
func (w *Withdrawal) GetStatus() string          { return w.Status }
