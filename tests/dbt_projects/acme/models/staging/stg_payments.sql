select id as payment_id, customer_id, amount, {{ helpers.to_cents('amount') }} as amount_cents from {{ ref('payments') }}
where amount >= {{ var('min_amount') }}
