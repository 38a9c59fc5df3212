with

order_items as (

    select * from {{ ref('stg_order_items') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

products as (

    select * from {{ ref('stg_products') }}

),

lines as (

    select
        products.product_id,
        products.product_name,
        products.category,
        orders.order_month,
        order_items.quantity,
        order_items.quantity * products.unit_price - coalesce(order_items.discount, 0) as revenue

    from order_items

    inner join orders
        on order_items.order_id = orders.order_id

    inner join products
        on order_items.product_id = products.product_id

    where not orders.is_returned

)

select
    product_id,
    product_name,
    category,
    order_month,
    count(*) as lines,
    sum(quantity) as units_sold,
    sum(revenue) as revenue,
    rank() over (partition by order_month order by sum(revenue) desc) as revenue_rank

from lines

group by product_id, product_name, category, order_month
