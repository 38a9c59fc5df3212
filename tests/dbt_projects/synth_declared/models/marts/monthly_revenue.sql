select
    date_trunc('month', o.ordered_at) as order_month,
    count(distinct o.order_id) as orders,
    count(distinct o.customer_id) as customers,
    sum(i.line_total) as revenue
from {{ ref('stg_shop__orders') }} as o
inner join {{ ref('stg_shop__order_items') }} as i on i.order_id = o.order_id
where o.status <> 'returned'
group by 1
