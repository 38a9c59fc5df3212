select
    product_id,
    product_name,
    coalesce(category, 'uncategorised') as category,
    price
from {{ source('shop', 'products') }}
