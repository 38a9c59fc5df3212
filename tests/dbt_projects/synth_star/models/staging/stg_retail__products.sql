select
    product_id,
    product_name,
    category_id,
    list_price
from {{ source('retail', 'products') }}
