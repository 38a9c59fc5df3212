select
    s.sale_id,
    s.sale_date,
    s.store_id,
    s.product_id,
    st.region_id,
    p.category_id,
    s.quantity,
    s.unit_price,
    s.line_total,
    s.quantity * p.list_price - s.line_total as discount_amount
from {{ ref('stg_retail__sales') }} as s
left join {{ ref('dim_stores') }} as st on st.store_id = s.store_id
left join {{ ref('dim_products') }} as p on p.product_id = s.product_id
