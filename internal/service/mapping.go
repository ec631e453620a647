package service

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// Upstream resources as protobuf messages. Amounts and balances are copied
// as the decimal strings they are; statuses become enums, and a status this
// version does not know becomes the UNSPECIFIED zero value rather than an
// error, since Upvest may add statuses at any time.

// enumOf maps an upstream status word (e.g. "CONFIRMED") onto the enum value
// named prefix+word (e.g. TOPUP_STATUS_CONFIRMED), using the generated
// name→value map, so a status added to the proto needs no code here.
func enumOf[E ~int32](values map[string]int32, prefix, word string) E {
	if word == "" || strings.ContainsFunc(word, func(r rune) bool { return (r < 'A' || r > 'Z') && r != '_' }) {
		return 0
	}
	return E(values[prefix+word])
}

// timestamp maps an absent (zero) time to an absent Timestamp.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func virtualCashIncreaseToProto(v *upstream.VirtualCashIncrease) *gatewayv1.VirtualCashIncrease {
	return &gatewayv1.VirtualCashIncrease{
		Id:             v.ID,
		CreatedAt:      timestamp(v.CreatedAt),
		UpdatedAt:      timestamp(v.UpdatedAt),
		AccountGroupId: v.AccountGroupID,
		Amount:         v.Amount,
		Currency:       v.Currency,
		Status:         enumOf[gatewayv1.VirtualCashIncreaseStatus](gatewayv1.VirtualCashIncreaseStatus_value, "VIRTUAL_CASH_INCREASE_STATUS_", v.Status),
	}
}

func virtualCashDecreaseToProto(v *upstream.VirtualCashDecrease) *gatewayv1.VirtualCashDecrease {
	return &gatewayv1.VirtualCashDecrease{
		Id:             v.ID,
		CreatedAt:      timestamp(v.CreatedAt),
		UpdatedAt:      timestamp(v.UpdatedAt),
		AccountGroupId: v.AccountGroupID,
		Amount:         v.Amount,
		Currency:       v.Currency,
		Status:         enumOf[gatewayv1.VirtualCashDecreaseStatus](gatewayv1.VirtualCashDecreaseStatus_value, "VIRTUAL_CASH_DECREASE_STATUS_", v.Status),
	}
}

func topupToProto(t *upstream.Topup) *gatewayv1.Topup {
	return &gatewayv1.Topup{
		Id:                  t.ID,
		CreatedAt:           timestamp(t.CreatedAt),
		AccountGroupId:      t.AccountGroupID,
		CashAmount:          t.CashAmount,
		Currency:            t.Currency,
		Status:              enumOf[gatewayv1.TopupStatus](gatewayv1.TopupStatus_value, "TOPUP_STATUS_", t.Status),
		SettlementReference: t.SettlementReference,
	}
}

func directDebitToProto(d *upstream.DirectDebit) *gatewayv1.DirectDebit {
	return &gatewayv1.DirectDebit{
		Id:                    d.ID,
		CreatedAt:             timestamp(d.CreatedAt),
		UserId:                d.UserID,
		AccountGroupId:        d.AccountGroupID,
		MandateId:             d.MandateID,
		CashAmount:            d.CashAmount,
		Currency:              d.Currency,
		RemittanceInformation: d.RemittanceInformation,
		Status:                enumOf[gatewayv1.DirectDebitStatus](gatewayv1.DirectDebitStatus_value, "DIRECT_DEBIT_STATUS_", d.Status),
	}
}

func withdrawalToProto(w *upstream.Withdrawal) *gatewayv1.Withdrawal {
	return &gatewayv1.Withdrawal{
		Id:                    w.ID,
		CreatedAt:             timestamp(w.CreatedAt),
		UpdatedAt:             timestamp(w.UpdatedAt),
		UserId:                w.UserID,
		AccountGroupId:        w.AccountGroupID,
		ReferenceAccountId:    w.ReferenceAccountID,
		Amount:                w.Amount,
		Currency:              w.Currency,
		RemittanceInformation: w.RemittanceInformation,
		Status:                enumOf[gatewayv1.WithdrawalStatus](gatewayv1.WithdrawalStatus_value, "WITHDRAWAL_STATUS_", w.Status),
	}
}

func cashBalanceToProto(b *upstream.CashBalance) *gatewayv1.CashBalance {
	return &gatewayv1.CashBalance{
		AccountGroupId:         b.AccountGroupID,
		Currency:               b.Currency,
		Balance:                b.Balance,
		LockedForTrading:       b.LockedForTrading,
		PendingSettlement:      b.PendingSettlement,
		AvailableForWithdrawal: b.AvailableForWithdrawal,
		AvailableForTrading:    b.AvailableForTrading,
	}
}
