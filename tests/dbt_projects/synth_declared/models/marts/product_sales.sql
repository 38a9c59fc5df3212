select
    p.product_id,
    p.product_name,
    p.category,
    count(i.order_item_id) as lines,
    coalesce(sum(i.quantity), 0) as units_sold,
    coalesce(sum(i.line_total), 0) as revenue
from {{ ref('stg_shop__products') }} as p
left join {{ ref('stg_shop__order_items') }} as i on i.product_id = p.product_id
group by 1, 2, 3
