select
    sale_id,
    store_id,
    product_id,
    sold_at,
    cast(sold_at as date) as sale_date,
    quantity,
    unit_price,
    line_total
from {{ source('retail', 'sales') }}
