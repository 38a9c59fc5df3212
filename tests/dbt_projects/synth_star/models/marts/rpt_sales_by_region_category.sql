select
    st.region_name,
    p.category_name,
    date_trunc('month', f.sale_date) as sale_month,
    count(*) as lines,
    sum(f.quantity) as units,
    sum(f.line_total) as revenue
from {{ ref('fct_sales') }} as f
inner join {{ ref('dim_stores') }} as st on st.store_id = f.store_id
inner join {{ ref('dim_products') }} as p on p.product_id = f.product_id
group by 1, 2, 3
