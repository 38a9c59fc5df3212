with order_totals as (
    select
        order_id,
        sum(line_total) as order_total,
        sum(quantity) as units
    from {{ ref('stg_shop__order_items') }}
    group by order_id
),

customer_totals as (
    select
        o.customer_id,
        count(*) as orders,
        count(*) filter (where o.is_returned) as returned_orders,
        min(o.ordered_at) as first_ordered_at,
        max(o.ordered_at) as last_ordered_at,
        sum(case when o.is_returned then 0 else coalesce(t.order_total, 0) end) as lifetime_value
    from {{ ref('stg_shop__orders') }} as o
    left join order_totals as t on t.order_id = o.order_id
    group by o.customer_id
)

select
    c.customer_id,
    c.full_name,
    c.country_code,
    c.created_at,
    coalesce(ct.orders, 0) as orders,
    coalesce(ct.returned_orders, 0) as returned_orders,
    ct.first_ordered_at,
    ct.last_ordered_at,
    coalesce(ct.lifetime_value, 0) as lifetime_value
from {{ ref('stg_shop__customers') }} as c
left join customer_totals as ct on ct.customer_id = c.customer_id
